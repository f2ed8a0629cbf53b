"""The Policies tab: samples from two policies with the same seeds, scores, win rate, KL; live training."""

from functools import partial

import gradio as gr
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
