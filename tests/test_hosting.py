"""Safe to host: pinned defaults, public mode, no server paths, escaped errors, isolation, ZeroGPU wiring.

The load, soak and memory figures live in bench/bench_hosting.py; these tests check the properties.
"""

import json
import os
import sys
import threading
import types
import urllib.request

import pytest

gr = pytest.importorskip("gradio")

from app import cache, handlers, hosting, limits  # noqa: E402
from app.context import AppContext, RMChoice  # noqa: E402
from app.errors import friendly, user_error  # noqa: E402
from red_core.models import REPO_ROOT, RewardModelError  # noqa: E402


def quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def public_ctx(tmp_path_factory):
    return AppContext.create(public=True, examples=[], files_dir=tmp_path_factory.mktemp("files"))


@pytest.fixture(scope="module")
def local_ctx(tmp_path_factory):
    return AppContext.create(examples=[], files_dir=tmp_path_factory.mktemp("files"))


def launched(serve_app, ctx):
    """`with launched(serve_app, ctx) as url:` the whole app, with the app's own launch arguments."""
    from app.ui import build_app, launch_kwargs

    return serve_app(build_app(ctx), **launch_kwargs())


# ----------------------------------------------------------------------------- the model cache


def test_pinned_models_are_never_evicted():
    loads = []
    c = cache.ModelCache(lambda k: loads.append(k) or f"model-{k}", 1, pinned={"default"})
    c.get("default")
    for k in "abcab":
        c.get(k)
    assert "default" in c.keys() and len(c.keys()) == 2  # the default plus one visitor model
    c.get("default")
    assert loads.count("default") == 1, "the pinned default was never reloaded"


def test_a_visitor_loading_models_never_evicts_the_default(local_ctx, model_dir):
    rm_default = local_ctx.reward_models.get(local_ctx.default_rm)
    for arch in ("llama", "gpt2", "bert"):  # more than MODEL_CACHE_SIZE other models
        handlers.load_model(local_ctx, model_dir(arch), None, "auto", None, progress=quiet)
    assert local_ctx.default_rm in local_ctx.reward_models.keys()
    assert local_ctx.reward_models.get(local_ctx.default_rm) is rm_default
    assert len(local_ctx.reward_models.keys()) == limits.MODEL_CACHE_SIZE + 1


def test_all_loads_share_one_lock(local_ctx):
    assert local_ctx.reward_models._load_lock is local_ctx.policies._load_lock is cache.LOAD_LOCK


# ----------------------------------------------------------------------------- public mode


def test_public_mode_refuses_paths_and_unlisted_ids_with_one_message(public_ctx, model_dir, tmp_path):
    h = public_ctx.hosting
    (tmp_path / "a-file").write_text("x")
    names = [model_dir("llama"), str(tmp_path / "a-file"), str(tmp_path / "missing"), "/etc", "~", "../..",
             "someone/unlisted-model", "assets/models/../models/reward"]
    messages = set()
    for name in names:
        with pytest.raises(RewardModelError) as err:
            h.resolve(name, "reward")
        messages.add(str(err.value))
    assert len(messages) == 1, "every refusal reads the same, so the page does not tell which paths exist"
    message = messages.pop()
    assert "assets/models/reward" in message and "Skywork/Skywork-Reward-V2-Qwen3-0.6B" in message
    assert str(REPO_ROOT) not in message
    assert h.resolve("assets/models/reward", "reward") == str(REPO_ROOT / "assets" / "models" / "reward")
    assert h.resolve("Skywork/Skywork-Reward-V2-Qwen3-0.6B", "reward") == "Skywork/Skywork-Reward-V2-Qwen3-0.6B"
    with pytest.raises(RewardModelError, match="GPU"):
        h.resolve("Skywork/Skywork-Reward-V2-Llama-3.1-8B", "reward")  # this machine has no GPU
    with pytest.raises(RewardModelError, match="policies"):
        h.resolve("Skywork/Skywork-Reward-V2-Qwen3-0.6B", "policy")  # a reward model is not an allowed policy
    assert h.resolve("assets/models/policy-red", "policy") == str(REPO_ROOT / "assets" / "models" / "policy-red")


def test_public_mode_through_the_handlers(public_ctx, model_dir):
    with pytest.raises(gr.Error, match="This public app loads only") as err:
        handlers.load_model(public_ctx, model_dir("llama"), None, "auto", None, progress=quiet)
    assert model_dir("llama") not in err.value.message
    with pytest.raises(gr.Error, match="This public app loads only"):
        handlers.compare_models(public_ctx, public_ctx.default_rm, "/etc", "q", "fine", progress=quiet)
    from app import policies_tab

    with pytest.raises(gr.Error, match="This public app loads only these policies"):
        list(policies_tab.generate(public_ctx, public_ctx.default_rm, "/tmp", "", "", "Hi", 1, 2, 1.0, 1.0, 0,
                                   progress=quiet))
    assert all(not os.path.isabs(v) for _, v in public_ctx.rm_choices)


def test_size_cap_applies_to_policies_and_reward_models(local_ctx, public_ctx, monkeypatch):
    monkeypatch.setattr(hosting, "hub_parameter_count", lambda name: 3_000_000_000)  # the hub's metadata says 3 B
    for kind in ("reward", "policy"):
        with pytest.raises(RewardModelError, match="MAX_MODEL_PARAMS"):
            local_ctx.hosting.resolve("someone/big-model", kind)
    with pytest.raises(RewardModelError, match="MAX_MODEL_PARAMS"):  # bigger than its allowlist entry promised
        public_ctx.hosting.resolve("Qwen/Qwen3-0.6B", "policy")


def test_public_mode_switch(monkeypatch):
    from app.__main__ import parse_args, public_mode

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert public_mode(parse_args([])) is False and public_mode(parse_args(["--public"])) is True
    monkeypatch.setenv("SPACE_ID", "someone/red-demo")
    assert public_mode(parse_args([])) is True and public_mode(parse_args(["--no-public"])) is False


# ----------------------------------------------------------------------------- what a client sees


@pytest.mark.parametrize("which", ["local_ctx", "public_ctx"])
def test_api_schema_has_no_server_path_and_describes_every_endpoint(which, request, serve_app):
    with launched(serve_app, request.getfixturevalue(which)) as url:
        text = urllib.request.urlopen(url + "gradio_api/info", timeout=30).read().decode()
        page = urllib.request.urlopen(url + "config", timeout=30).read().decode()
    assert str(REPO_ROOT) not in text and str(REPO_ROOT) not in page
    info = json.loads(text)["named_endpoints"]
    assert {"/token_rewards", "/load_reward_model", "/compare_methods", "/policies_train_live"} <= set(info)
    for name, ep in info.items():
        assert ep["description"] and not ep["description"].startswith("partial("), name
        assert not any(p["parameter_name"].startswith("value_") for p in ep["parameters"]), name
        assert not any((r.get("label") or "value_").startswith("value_") for r in ep["returns"]), name
    params = {p["parameter_name"]: p for p in info["/token_rewards"]["parameters"]}
    assert params["prompt"]["parameter_has_default"] and not params["response"]["parameter_has_default"]
    assert {p["parameter_name"]: p["parameter_has_default"] for p in info["/load_reward_model"]["parameters"]} == {
        "name": True, "label_index": True, "input_format": True}


def test_error_messages_show_markup_as_text():
    typed = '<b>bold</b><img src=x onerror="alert(1)"> & co'
    err = user_error(f"Could not load {typed}")
    assert "<b>" not in err.message and "<img" not in err.message and "&lt;img" in err.message
    assert str(REPO_ROOT) not in user_error(f"no folder {REPO_ROOT}/x").message


def test_every_failure_becomes_a_readable_message():
    def boom(x):
        raise KeyError("tokens")

    def stream(x):
        yield 1
        raise RuntimeError("model went away")

    with pytest.raises(gr.Error, match="KeyError"):
        friendly(boom)(1)
    with pytest.raises(gr.Error, match="model went away"):
        list(friendly(stream)(1))


def test_clients_get_their_own_results_and_readable_errors(local_ctx, serve_app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with launched(serve_app, local_ctx) as url:
        # A lone surrogate can only arrive as a raw JSON escape (gradio_client cannot even send one).
        data = ["q", "bad \ud800 text", "red", 1.0, 0.5, True, "token", True, "text", 1.0]  # the raw API needs every input
        body = json.dumps({"data": data}).encode()  # ensure_ascii: "\\ud800" on the wire
        req = urllib.request.Request(url + "gradio_api/call/token_rewards", data=body,
                                     headers={"Content-Type": "application/json"})
        event = json.load(urllib.request.urlopen(req, timeout=30))["event_id"]
        stream = urllib.request.urlopen(f"{url}gradio_api/call/token_rewards/{event}", timeout=60).read()
        assert b"event: error" in stream and b"lone surrogate U+D800" in stream
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="response is empty"):
            client.predict("q", "  ", api_name="/token_rewards")
        results, errors = {}, []

        def visitor(i):
            try:
                c = Client(url, verbose=False)
                for j in range(3):
                    text = f"Visitor {i} says hello, round {j}."
                    *_, exact = c.predict("Q: ", text, api_name="/token_rewards")
                    results[(i, j)] = exact["response"]
            except Exception as err:  # noqa: BLE001 - asserted below
                errors.append(err)

        threads = [threading.Thread(target=visitor, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert errors == []
        assert results == {(i, j): f"Visitor {i} says hello, round {j}." for i in range(6) for j in range(3)}


def test_sessions_and_downloads_are_bounded(local_ctx):
    from app.ui import build_app, launch_kwargs

    demo = build_app(local_ctx)
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    assert states and all(s.time_to_live == limits.SESSION_TTL_SECONDS for s in states)
    assert launch_kwargs()["state_session_capacity"] == limits.MAX_SESSIONS


# ----------------------------------------------------------------------------- ZeroGPU


def test_scoring_and_generation_run_under_spaces_gpu_when_it_is_installed(local_ctx, monkeypatch):
    wrapped = []

    def GPU(duration=None):  # the decorator the `spaces` package provides on ZeroGPU Spaces
        def wrap(fn):
            wrapped.append((getattr(fn, "__name__", ""), duration))
            return fn
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    from app.ui import build_app

    build_app(local_ctx)
    names = {n for n, _ in wrapped}
    assert {"explore", "compare_methods", "compare_pair", "compare_models", "generate"} <= names
    assert all(d == limits.GPU_DURATION_SECONDS for _, d in wrapped)
    monkeypatch.delitem(sys.modules, "spaces")
    assert hosting.gpu(handlers.explore) is handlers.explore  # without `spaces` nothing changes


def test_choice_names_are_public(local_ctx):
    assert local_ctx.default_rm == RMChoice("assets/models/reward")
    assert local_ctx.default_policy == "assets/models/policy-base"
