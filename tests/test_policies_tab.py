"""The Policies tab: samples from two policies with the same seeds, scores, win rate, KL; live training;
the picker of shipped "after" policies (read from a models folder), colours and dark-mode readability."""

import json
import shutil
from functools import partial

import gradio as gr
import numpy as np
import pytest
import torch

from app import policies_tab
from app.context import AppContext, RMChoice
from red_core import policies as compare
from red_core.testing import byte_bpe_tokenizer, tiny_causal_lm, tiny_reward_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("policies")
    tok = byte_bpe_tokenizer()
    a = tiny_causal_lm(root / "before", tokenizer=tok, layers=1, width=32, seed=0)
    b = tiny_causal_lm(root / "after", tokenizer=tok, layers=1, width=32, seed=1)
    rm = tiny_reward_model("llama", root / "rm", tokenizer=tok, layers=1, width=32)
    ctx = AppContext.create(reward_model=str(rm), policy=str(a), examples=[], files_dir=root / "files")
    return {"before": str(a), "after": str(b), "rm": str(rm), "ctx": ctx, "root": root}


def no_progress(*args, **kwargs):
    return None


def run_handler(s, before, after, prompts="The movie was\nHello world", n=2, max_new=5, seed=0):
    out = list(policies_tab.generate(s["ctx"], RMChoice(s["rm"]), before, after, "", prompts, n, max_new, 1.0, 1.0,
                                     seed, progress=no_progress))
    assert out[0][0].startswith("⏳")  # progress first
    return out[-1]


def test_handler_returns_both_sample_sets_and_scores(setup):
    status, summary, fig, samples, table, numbers = run_handler(setup, setup["before"], setup["after"])
    assert status.startswith("✓")
    assert numbers["before"]["n"] == numbers["after"]["n"] == 4
    assert numbers["before"]["kl_to_reference"] == pytest.approx(0.0)  # the reference is "before" itself
    assert isinstance(numbers["after"]["kl_to_reference"], float)
    assert 0.0 <= numbers["win_rate_after"] <= 1.0
    assert len(table) == 4 and table["before_score"].notna().all() and table["after_score"].notna().all()
    assert "Win rate of after over before" in summary and samples.count("red-heatmap") >= 1
    assert len(fig.data) == 2  # one distribution per policy


def test_same_policy_same_seed_gives_same_samples(setup):
    *_, table, numbers = run_handler(setup, setup["before"], setup["before"], n=3)
    assert list(table["before"]) == list(table["after"])
    assert numbers["win_rate_after"] == pytest.approx(0.5)
    assert numbers["after"]["kl_to_reference"] == pytest.approx(0.0, abs=1e-9)


def test_limits_and_bad_input_give_readable_errors(setup):
    too_many = "\n".join(f"prompt {i}" for i in range(compare.MAX_PROMPTS + 1))
    with pytest.raises(gr.Error, match="MAX_PROMPTS"):
        run_handler(setup, setup["before"], setup["after"], prompts=too_many)
    with pytest.raises(gr.Error, match="MAX_SAMPLES_PER_PROMPT"):
        run_handler(setup, setup["before"], setup["after"], n=compare.MAX_SAMPLES_PER_PROMPT + 1)
    with pytest.raises(gr.Error, match="Could not load the policy"):
        run_handler(setup, setup["before"], str(setup["root"] / "missing"))


def test_compare_library_stop_and_kl_against_a_third_reference(setup):
    from red_core import load_reward_model

    rm = load_reward_model(setup["rm"])
    events = compare.compare_policies(compare.local_policies(), rm, before=setup["before"], after=setup["after"],
                                      reference=setup["after"], prompts=["Hi"], n=2, max_new_tokens=4)
    cmp = compare.run_to_end(events)
    assert cmp.summary()["after"]["kl_to_reference"] == pytest.approx(0.0)
    assert cmp.summary()["before"]["kl_to_reference"] is not None
    # gold beside RM reward: the same function training logs, on the same decoded samples
    from red_core.gold import gold_scores

    assert cmp.summary()["after"]["gold_mean"] == pytest.approx(
        float(np.mean(gold_scores(cmp.after.prompts, cmp.after.responses))))
    stopped = compare.compare_policies(compare.local_policies(), rm, before=setup["before"], after=setup["after"],
                                       prompts=["Hi"], n=1, max_new_tokens=3, should_stop=lambda: True)
    assert compare.run_to_end(stopped) is None


def test_through_gradio_client(setup, serve_app):
    from gradio_client import Client

    ctx = setup["ctx"]
    with gr.Blocks() as demo:
        ctx.rm_state = gr.State(RMChoice(setup["rm"]))
        policies_tab.build(ctx)
    demo.queue()
    with serve_app(demo) as url:
        client = Client(url, verbose=False)
        status, summary, fig, samples, table, numbers = client.predict(
            setup["before"], setup["after"], "", "The movie was", 2, 4, 1.0, 1.0, 0, api_name="/policies_generate")
    assert status.startswith("✓")
    assert numbers["before"]["n"] == numbers["after"]["n"] == 2
    assert len(table["data"]) == 2 and all(row[2] is not None and row[4] is not None for row in table["data"])


def test_live_runs_step_both_methods(setup):
    from red_core import load_policy, load_reward_model
    from red_core.policies import live_figure, live_runs

    policy, tok = load_policy(setup["before"])
    weights = {k: v.clone() for k, v in policy.state_dict().items()}
    rm = load_reward_model(setup["rm"])
    events = list(live_runs(policy, tok, rm, ["The movie was", "Hello"], steps=1, batch_size=2, max_new_tokens=3,
                            threads=1))
    assert len(events) == 2 and all("reward" in message for _, message in events)
    history = events[-1][0]
    assert [len(v) for v in history.values()] == [1, 1]
    assert len(live_figure(history).data) == 4
    assert all(torch.equal(v, weights[k]) for k, v in policy.state_dict().items()), "the caller's policy is not trained"


def small_live_runs(monkeypatch):
    import red_core.policies as live

    monkeypatch.setattr(live, "live_runs", partial(live.live_runs, threads=1))
    monkeypatch.setattr(policies_tab, "LIVE_BATCH_SIZE", 2)
    monkeypatch.setattr(policies_tab, "LIVE_NEW_TOKENS", 3)
    monkeypatch.setattr(policies_tab, "_default_prompts", lambda: ["The movie was"])


def test_train_live_handler_streams_figures(setup, monkeypatch):
    small_live_runs(monkeypatch)
    outs = list(policies_tab.train_live(setup["ctx"], 1, 0, "policy", progress=no_progress))
    assert len(outs) == 3 and outs[-1][1].startswith("✓")  # one update per method, then the final one
    assert len(outs[-1][0].data) == 4
    with pytest.raises(gr.Error, match="MAX_LIVE_STEPS"):
        list(policies_tab.train_live(setup["ctx"], policies_tab.MAX_LIVE_STEPS + 1, 0, progress=no_progress))


def test_concurrent_train_live_runs_queue_and_leave_nothing_broken(setup, monkeypatch, serve_app):
    """Two visitors press Train at once, then a third: all succeed, and Generate still works afterwards."""
    import threading
    import time

    from gradio_client import Client

    import red_core.policies as live

    small_live_runs(monkeypatch)
    spans, inner = [], live.live_runs

    def timed(*args, **kwargs):  # records when each run starts and ends
        t0 = time.monotonic()
        yield from inner(*args, **kwargs)
        spans.append((t0, time.monotonic()))

    monkeypatch.setattr(live, "live_runs", timed)
    ctx = setup["ctx"]
    with gr.Blocks() as demo:
        ctx.rm_state = gr.State(ctx.default_rm)
        policies_tab.build(ctx)
    demo.queue(default_concurrency_limit=2)
    with serve_app(demo) as url:
        results, errors = [], []
        start = threading.Barrier(2)

        def visitor(seed):
            client = Client(url, verbose=False)
            start.wait()  # both requests are sent together: the runs would overlap without the queue
            try:
                results.append(client.predict(2, seed, "policy", api_name="/policies_train_live"))
            except Exception as err:  # noqa: BLE001 - collected and asserted below
                errors.append(err)

        threads = [threading.Thread(target=visitor, args=(s,)) for s in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert errors == [] and len(results) == 2 and all(status.startswith("✓") for _, status in results)
        assert len(spans) == 2 and (spans[0][1] <= spans[1][0] or spans[1][1] <= spans[0][0]), "runs must not overlap"
        third = Client(url, verbose=False).predict(2, 2, "policy", api_name="/policies_train_live")
        assert third[1].startswith("✓")
        status, *_ , numbers = Client(url, verbose=False).predict(
            setup["before"], setup["after"], "", "The movie was", 1, 3, 1.0, 1.0, 0, api_name="/policies_generate")
        assert status.startswith("✓") and numbers["before"]["n"] == 1


# ----------------------------------------------------------------------------- shipped "after" policies


@pytest.fixture(scope="module")
def models_dir(setup):
    """A models folder as assets/models: policy-base, policy-red (model card only), policy-red-kl (evaluation.json
    with a description), a policy-* folder without a model (not offered) and a reward model (not a policy)."""
    root = setup["root"] / "models"
    for name in ("policy-base", "policy-red", "policy-red-kl"):
        shutil.copytree(setup["before" if name == "policy-base" else "after"], root / name)
    (root / "policy-red" / "README.md").write_text("---\ntags: [policy]\n---\n# policy-base trained with RED-PPO\n\n"
                                                   "More text.\n", encoding="utf-8")
    evaluation = {"description": "a RED-trained policy stopped at a KL budget", "config": {"method": "red"},
                  "eval": {"red": {"reward_before": -0.05, "reward_after": 0.31, "kl_to_base": 1.5, "win_rate": 0.8}}}
    (root / "policy-red-kl" / "evaluation.json").write_text(json.dumps(evaluation), encoding="utf-8")
    (root / "policy-notes").mkdir()
    (root / "policy-notes" / "README.md").write_text("# not a model\n", encoding="utf-8")
    shutil.copytree(setup["rm"], root / "reward")
    return root


def test_picker_lists_every_shipped_policy_folder(setup, models_dir):
    ctx = AppContext.create(reward_model=setup["rm"], examples=[], files_dir=setup["root"] / "files",
                            models_dir=models_dir)
    assert [p.name for p in ctx.after_policies] == ["policy-red", "policy-red-kl"]
    red, kl = ctx.after_policies
    assert red.description == "policy-base trained with RED-PPO" and red.numbers == {}
    assert kl.description == "a RED-trained policy stopped at a KL budget"
    assert kl.numbers == {"reward_before": -0.05, "reward_after": 0.31, "kl_to_base": 1.5, "win_rate": 0.8}
    assert ctx.default_policy == "policy-base"  # the folder's base policy is the "before"
    assert set(ctx.hosting.bundled["policy"]) == {"policy-base", "policy-red", "policy-red-kl"}
    with gr.Blocks() as demo:
        ctx.rm_state = gr.State(ctx.default_rm)
        policies_tab.build(ctx)
    blocks = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    after, before = blocks["pol-after"], blocks["pol-before"]
    assert [v for _, v in after.choices] == ["policy-red", "policy-red-kl"] and after.value == "policy-red"
    assert {"policy-base", "policy-red-kl"} <= {v for _, v in before.choices} and before.value == "policy-base"
    assert after.info == "policy-base trained with RED-PPO"
    assert policies_tab.after_info(ctx, "policy-red-kl").info == "a RED-trained policy stopped at a KL budget"
    assert "not bundled" in policies_tab.describe(ctx, "someone/else")
    shipped = blocks["pol-shipped"].value
    assert "a RED-trained policy stopped at a KL budget" in shipped and "-0.050 → +0.310" in shipped
    assert "1.50" in shipped and "80%" in shipped and "policy-notes" not in shipped
    # the real assets: every policy-* folder but policy-base is offered
    real = sorted(p.name for p in (policies_tab.compare.REPO_ROOT / "assets" / "models").glob("policy-*")
                  if p.name != "policy-base" and (p / "config.json").is_file())
    assert [p.name.split("/")[-1] for p in setup["ctx"].after_policies] == real and "policy-red" in real


def test_public_mode_serves_the_shipped_policies(setup, models_dir):
    ctx = AppContext.create(reward_model=setup["rm"], examples=[], files_dir=setup["root"] / "files",
                            models_dir=models_dir, public=True)

    def generate(after):
        return list(policies_tab.generate(ctx, ctx.default_rm, "policy-base", after, "", "Hi", 1, 3, 1.0, 1.0, 0,
                                          progress=no_progress))[-1]

    *_, numbers = generate("policy-red-kl")
    assert numbers["after"]["policy"] == "policy-red-kl" and numbers["after"]["n"] == 1
    with pytest.raises(gr.Error, match="This public app loads only these policies"):
        generate(setup["after"])  # a folder that is not shipped


def test_tables_follow_the_theme_and_lines_avoid_red_and_blue(setup):
    from red_core import viz

    status, summary, fig, *_ = run_handler(setup, setup["before"], setup["after"], n=1, max_new=3)
    shipped = policies_tab.shipped_html(setup["ctx"].after_policies)
    for page in (summary, shipped):
        assert "color:var(--body-text-color,#222)" in page and "background:var(--block-background-fill,#fff)" in page
    assert [t.marker.color for t in fig.data] == [viz.METHOD_COLOURS["before"], viz.METHOD_COLOURS["after"]]
    assert all(f"background:{viz.METHOD_COLOURS[k]}" in summary for k in ("before", "after"))
    live = compare.live_figure({"red": [{"step": 1, "reward_mean": 0.1, "kl": 0.0}],
                                "sparse": [{"step": 1, "reward_mean": 0.2, "kl": 0.0}]})
    red_blue = {"rgb({},{},{})".format(*viz.NEG), "rgb({},{},{})".format(*viz.POS), "#2166ac", "#b2182b"}
    used = {t.line.color for t in live.data} | {t.marker.color for t in fig.data}
    assert used and not used & red_blue
    assert "sample 1" in policies_tab.samples_html(compare.run_to_end(compare.compare_policies(
        compare.local_policies(), red_core_rm(setup), before=setup["before"], after=setup["after"], prompts=["Hi"],
        n=1, max_new_tokens=2)))  # samples are numbered from 1


def red_core_rm(setup):
    from red_core import load_reward_model

    return load_reward_model(setup["rm"])
