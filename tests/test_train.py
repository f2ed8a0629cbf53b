"""RED-PPO trainer: reward assembly, GAE, rollout credit, a short run, resume after interruption."""

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from red_core import load_reward_model
from red_core.methods import compute_rewards
from red_core.scoring import PrefixScores
from red_core.testing import byte_bpe_tokenizer, tiny_causal_lm, tiny_reward_model
from red_core.train import RunFolderError, TrainConfig, read_metrics, train
from red_core.train.checkpoints import strict_json
from red_core.train.cli import add_train_args, config_from_args
from red_core.train.gae import explained_variance, gae, gae_loop, masked_whiten
from red_core.train.ppo import METRIC_COLUMNS, PPOTrainer, latest_checkpoint, response_mask
from red_core.train.rewards import assemble_rewards, assemble_rewards_loop, rollout_credit, token_char_ends

PROMPTS = ["The movie was", "My day at work", "Hello world", "Why? Because", "Line one\n", "I love"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny policy and RM sharing one tokenizer, plus an RM with its own (different) tokenizer."""
    root = tmp_path_factory.mktemp("train-models")
    tok = byte_bpe_tokenizer()
    policy = tiny_causal_lm(root / "policy", tokenizer=tok, layers=1, width=32)
    rm = tiny_reward_model("llama", root / "rm", tokenizer=tok, layers=1, width=32)
    other = tiny_reward_model("gpt2", root / "rm-gpt2", layers=1, width=32, vocab_size=300, bos=False)
    prompts = root / "prompts.txt"
    prompts.write_text("\n".join(p.replace("\n", "\\n") for p in PROMPTS) + "\n")
    return {"policy": str(policy), "rm": str(rm), "rm_other": str(other), "prompts": str(prompts), "root": root}


def tiny_config(models, out, **kw) -> TrainConfig:
    settings = dict(policy=models["policy"], reward_model=models["rm"], prompts=models["prompts"], out=str(out),
                    steps=2, batch_size=4, minibatch_size=2, ppo_epochs=1, max_new_tokens=6, save_every=1,
                    progress=False, threads=1, actor_lr=1e-3, critic_lr=1e-3)
    settings.update(kw)
    return TrainConfig(**settings)


# ----------------------------------------------------------------------------- phase 3: rewards


def test_reward_assembly_matches_hand_computation_and_loop():
    # Rollout 0: 3 tokens. RED credit from prefix scores P = [0.2, 0.5, 0.4] with R(x, ∅) = 0.1:
    # [0.2 - 0.1, 0.5 - 0.2, 0.4 - 0.5] = [0.1, 0.3, -0.1]. Rollout 1: 2 tokens, then padding.
    ps0 = PrefixScores(prefix_scores=np.array([0.2, 0.5, 0.4]), baseline=0.1, score=0.4, path="test")
    ps1 = PrefixScores(prefix_scores=np.array([-0.3, -0.5]), baseline=0.0, score=-0.5, path="test")
    c0, _ = compute_rewards("red", ps0)
    c1, _ = compute_rewards("red", ps1)
    np.testing.assert_allclose(c0, [0.1, 0.3, -0.1], atol=1e-12)
    np.testing.assert_allclose(c1, [-0.3, -0.2], atol=1e-12)
    credit = torch.tensor([[0.1, 0.3, -0.1], [-0.3, -0.2, 0.0]], dtype=torch.float64)
    logp_old = torch.tensor([[-1.0, -2.0, -0.5], [-0.7, -0.1, -9.0]], dtype=torch.float64)
    logp_ref = torch.tensor([[-1.1, -1.8, -0.55], [-0.2, -0.1, -1.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    rewards, kl = assemble_rewards(credit, logp_old, logp_ref, mask, kl_coef=0.5)
    # r_t = credit_t - 0.5 * (log π_old - log π_ref): signed, not clamped; padding gets 0.
    expected = [[0.1 - 0.5 * 0.1, 0.3 - 0.5 * (-0.2), -0.1 - 0.5 * 0.05], [-0.3 - 0.5 * (-0.5), -0.2, 0.0]]
    np.testing.assert_allclose(rewards.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(kl.numpy(), [[0.1, -0.2, 0.05], [-0.5, 0.0, 0.0]], atol=1e-12)
    assert rewards.numpy() == pytest.approx(np.array(assemble_rewards_loop(credit, logp_old, logp_ref, mask, 0.5)))
    # With β = 0 the sum over a rollout is R(x, y) - R(x, ∅): the telescoping sum survives assembly.
    r0, _ = assemble_rewards(credit, logp_old, logp_ref, mask, kl_coef=0.0)
    assert float(r0[0].sum()) == pytest.approx(0.4 - 0.1)


def test_reward_assembly_random_vectorised_equals_loop():
    g = torch.Generator().manual_seed(0)
    credit, a, b = (torch.randn(5, 7, generator=g, dtype=torch.float64) for _ in range(3))
    lengths = torch.tensor([7, 1, 3, 6, 2])
    mask = (torch.arange(7)[None] < lengths[:, None]).long()
    rewards, _ = assemble_rewards(credit, a, b, mask, 0.3)
    np.testing.assert_allclose(rewards.numpy(), assemble_rewards_loop(credit, a, b, mask, 0.3), atol=1e-12)


# ----------------------------------------------------------------------------- phase 4: GAE


def test_gae_matches_reference_loop():
    g = torch.Generator().manual_seed(1)
    rewards, values = torch.randn(6, 9, generator=g, dtype=torch.float64), torch.randn(6, 9, generator=g, dtype=torch.float64)
    lengths = torch.tensor([9, 1, 4, 8, 2, 5])
    mask = (torch.arange(9)[None] < lengths[:, None]).float()
    for gamma, lam in [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0), (1.0, 0.0)]:
        adv, ret = gae(rewards, values, mask, gamma, lam)
        ref_adv, ref_ret = gae_loop(rewards, values, mask, gamma, lam)
        np.testing.assert_allclose(adv.numpy(), ref_adv, atol=1e-10)
        np.testing.assert_allclose(ret.numpy(), ref_ret, atol=1e-10)


def test_gae_hand_example():
    # γ = 1, λ = 1: advantage = reward-to-go − V(s_t); return = reward-to-go.
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.5, 0.5, 0.5]])
    adv, ret = gae(rewards, values, torch.ones(1, 3), 1.0, 1.0)
    assert adv.tolist() == [[5.5, 4.5, 2.5]]
    assert ret.tolist() == [[6.0, 5.0, 3.0]]
    # λ = 0: one-step TD errors δ_t = r_t + V(s_{t+1}) − V(s_t), V after the end = 0.
    adv0, _ = gae(rewards, values, torch.ones(1, 3), 1.0, 0.0)
    assert adv0.tolist() == [[1.0, 2.0, 2.5]]


def test_whiten_and_explained_variance():
    x = torch.tensor([[1.0, 2.0, 3.0, 99.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w = masked_whiten(x, mask)
    assert w[0, :3].tolist() == pytest.approx([-1.0, 0.0, 1.0], abs=1e-6) and w[0, 3] == 0
    assert explained_variance(x, x, mask) == pytest.approx(1.0)


def test_response_mask_includes_first_eos_only():
    eos = 2
    response = torch.tensor([[5, 6, 2, 0, 0], [5, 5, 5, 5, 5], [2, 0, 0, 0, 0], [7, 2, 9, 2, 0]])
    got = response_mask(response, [eos])
    loop = torch.zeros_like(got)
    for b, row in enumerate(response.tolist()):
        n = row.index(eos) + 1 if eos in row else len(row)
        loop[b, :n] = 1
    assert torch.equal(got, loop)


# ----------------------------------------------------------------------------- phase 2: credit on rollouts


def test_rollout_credit_shared_vocab_telescopes_and_skips_padding(models):
    rm = load_reward_model(models["rm"])
    tok = rm.tokenizer
    prompt_ids = [tok("The movie was").input_ids, tok("Hi").input_ids]
    response_ids = [tok(" great fun", add_special_tokens=False).input_ids + [tok.eos_token_id],
                    tok(" ok", add_special_tokens=False).input_ids]
    T = max(len(r) for r in response_ids) + 2
    out = rollout_credit(rm, tok, prompt_ids, response_ids, ["The movie was", "Hi"], "red", {}, T)
    assert out.credit.shape == (2, T)
    for b, r in enumerate(response_ids):
        assert float(out.credit[b].sum()) == pytest.approx(out.scores[b] - out.baselines[b], abs=1e-5)
        assert torch.all(out.credit[b, len(r):] == 0)
    sparse = rollout_credit(rm, tok, prompt_ids, response_ids, ["The movie was", "Hi"], "sparse", {}, T)
    np.testing.assert_allclose(sparse.scores, out.scores)  # one RM read gives both
    assert float(sparse.credit[0, len(response_ids[0]) - 1]) == pytest.approx(out.scores[0], abs=1e-6)


def test_rollout_credit_other_tokenizer_keeps_the_sum(models):
    rm = load_reward_model(models["rm_other"])
    policy_tok = load_reward_model(models["rm"]).tokenizer
    prompt = "The movie was"
    response_ids = [policy_tok(" great and wonderful!", add_special_tokens=False).input_ids + [policy_tok.eos_token_id]]
    out = rollout_credit(rm, policy_tok, [policy_tok(prompt).input_ids], response_ids, [prompt], "red", {}, 12)
    assert float(out.credit[0].sum()) == pytest.approx(out.scores[0] - out.baselines[0], abs=1e-5)
    assert torch.all(out.credit[0, len(response_ids[0]):] == 0)
    text = policy_tok.decode(response_ids[0], skip_special_tokens=True)
    ends = token_char_ends(policy_tok, response_ids[0], text)
    assert ends == sorted(ends) and ends[-1] == len(text)


# ----------------------------------------------------------------------------- config and CLI


def test_config_validation_and_cli_flags(models, tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        TrainConfig(method="nope")
    with pytest.raises(ValueError, match="must divide"):
        TrainConfig(batch_size=6, minibatch_size=4)
    with pytest.raises(ValueError, match="not found"):
        TrainConfig(prompts=str(tmp_path / "missing.txt"))
    parser = add_train_args(argparse.ArgumentParser())
    args = parser.parse_args(["--policy", models["policy"], "--reward-model", models["rm"], "--prompts",
                              models["prompts"], "--method", "sparse", "--steps", "3", "--out", str(tmp_path),
                              "--no-resume", "--kl-coef", "0.1"])
    cfg = config_from_args(args)
    assert (cfg.method, cfg.steps, cfg.resume, cfg.kl_coef, cfg.out) == ("sparse", 3, False, 0.1, str(tmp_path))


# ----------------------------------------------------------------------------- a short run


def _flat_weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_two_step_run_changes_weights_and_writes_metrics(models, tmp_path):
    cfg = tiny_config(models, tmp_path / "run")
    summary = train(cfg)
    assert summary["steps_done"] == 2 and "copy of the reward model" in summary["critic"]
    before = _flat_weights(__import__("pathlib").Path(models["policy"]))
    after = _flat_weights(tmp_path / "run" / "policy")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2]
    assert set(METRIC_COLUMNS) <= set(rows[0])
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == list(METRIC_COLUMNS)
    for r in rows:
        assert np.isfinite([r["reward_mean"], r["kl"], r["entropy"], r["policy_loss"], r["value_loss"]]).all()
        assert 1 <= r["response_length"] <= cfg.max_new_tokens
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # step 1 samples from the reference itself
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps_done"] == 2


def test_other_tokenizer_run_uses_a_fresh_critic(models, tmp_path):
    cfg = tiny_config(models, tmp_path / "run", reward_model=models["rm_other"], steps=1, method="uniform")
    trainer = PPOTrainer(cfg)
    assert not trainer.shared and "fresh zero-initialised" in trainer.critic_how
    assert float(trainer.critic.head.weight.detach().abs().sum()) == 0.0
    metrics = trainer.step()
    assert np.isfinite(metrics["reward_mean"])
    with pytest.raises(ValueError, match="critic_init='reward'"):
        PPOTrainer(tiny_config(models, tmp_path / "x", reward_model=models["rm_other"], critic_init="reward"))


class Killed(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted_run(models, tmp_path):
    kw = dict(steps=4, save_every=2, ppo_epochs=2)
    full = train(tiny_config(models, tmp_path / "full", **kw))

    def kill_at_3(metrics, trainer):  # dies after step 3 is logged but before its checkpoint
        if metrics["step"] == 3:
            raise Killed

    with pytest.raises(Killed):
        train(tiny_config(models, tmp_path / "cut", **kw), callback=kill_at_3)
    assert latest_checkpoint(tmp_path / "cut").name == "step-000002"
    assert [r["step"] for r in read_metrics(tmp_path / "cut")] == [1, 2, 3]
    resumed = train(tiny_config(models, tmp_path / "cut", **kw))
    assert resumed["resumed_from"].endswith("step-000002")

    assert _numbers(read_metrics(tmp_path / "cut")) == _numbers(full["metrics"])
    a, b = _flat_weights(tmp_path / "full" / "policy"), _flat_weights(tmp_path / "cut" / "policy")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Resuming with different settings is refused rather than mixing two runs.
    with pytest.raises(ValueError, match="other settings"):
        train(tiny_config(models, tmp_path / "cut", **{**kw, "kl_coef": 0.5}))


KILL_AFTER_STEP = """
import os, sys, time, argparse
from red_core.train import train
from red_core.train.cli import add_train_args, config_from_args

fifo = sys.argv[1]
cfg = config_from_args(add_train_args(argparse.ArgumentParser()).parse_args(sys.argv[2:]))

def signal_and_wait(metrics, trainer):  # called after each step's checkpoint is on disk
    if metrics["step"] == 2:
        with open(fifo, "w") as f:
            f.write("2\\n")  # tell the test: checkpoint 2 is written; now wait to be killed
        time.sleep(600)

train(cfg, callback=signal_and_wait)
"""


def test_sigkilled_process_resumes_to_the_same_result(models, tmp_path):
    """A real kill (SIGKILL, no cleanup) mid-run; the rerun continues from the last checkpoint.

    The child says "checkpoint 2 is written" through a named pipe and then waits; the test blocks on the pipe
    (no polling, no timing guess) and kills it at that point, so the kill always lands mid-run."""
    import select
    import signal
    import subprocess
    import sys
    from pathlib import Path

    kw = dict(steps=6, save_every=1)
    reference = train(tiny_config(models, tmp_path / "ref", **kw))
    out = tmp_path / "killed"
    flags = ["--policy", models["policy"], "--reward-model", models["rm"], "--prompts", models["prompts"], "--out",
             str(out), "--steps", "6", "--save-every", "1", "--batch-size", "4", "--minibatch-size", "2",
             "--ppo-epochs", "1", "--max-new-tokens", "6", "--threads", "1", "--actor-lr", "1e-3", "--critic-lr",
             "1e-3", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    fifo = tmp_path / "signal"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-c", KILL_AFTER_STEP, str(fifo), *flags], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opening the read end does not wait for the writer
    try:
        ready, _, _ = select.select([reader], [], [], 180)  # blocks until the child writes (or 180 s pass)
        assert ready and os.read(reader, 16) == b"2\n", "the child never reported checkpoint 2"
    finally:
        os.close(reader)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "policy").exists()
    done = subprocess.run([sys.executable, "-m", "red_core.train", *flags], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout
    a, b = _flat_weights(tmp_path / "ref" / "policy"), _flat_weights(out / "policy")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _numbers(read_metrics(out)) == _numbers(reference["metrics"])


# ----------------------------------------------------------------------------- the run folder: faults
# Issue "Training can lose a run". A base run stops at step 2 of 4 (checkpoints at steps 1 and 2);
# each test copies it, breaks something, and continues; `reference` is the same 4 steps uninterrupted.

FOUR = dict(steps=4)  # the settings every run below shares (tiny_config fills the rest)


def _numbers(rows):
    """The trainer's numbers of each row, less the timings (and less keys a callback added), as strict JSON
    values: NaN (a metric that is off, e.g. the gold reward) becomes None, so equal rows compare equal."""
    rows = [{k: r[k] for k in METRIC_COLUMNS if not k.startswith("time_") and k != "step_time"} for r in rows]
    return json.loads(strict_json(rows))


def assert_same_run(out, reference):
    """Metrics (less timings) and final policy weights of OUT equal the uninterrupted reference run."""
    assert _numbers(read_metrics(out)) == _numbers(reference["metrics"])
    a, b = _flat_weights(Path(reference["out"]) / "policy"), _flat_weights(Path(out) / "policy")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(models, tmp_path_factory):
    return train(tiny_config(models, tmp_path_factory.mktemp("reference") / "run", **FOUR))


@pytest.fixture(scope="module")
def stopped_run(models, tmp_path_factory):
    """OUT of a 4-step run stopped after step 2, keeping two checkpoints (steps 1 and 2)."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    summary = train(tiny_config(models, out, keep_checkpoints=2, **FOUR), callback=lambda m, t: m["step"] == 2)
    assert summary["stopped"] and summary["steps_done"] == 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step-000001", "step-000002"]
    return out


@pytest.fixture
def run_copy(stopped_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(stopped_run, out)
    return out


def ckpt(out, step):
    return out / "checkpoints" / f"step-{step:06d}"


@pytest.mark.parametrize("pointer", ["missing", "empty", "older", "gone", "outside"])
def test_lost_latest_pointer_resumes_and_keeps_every_row(models, run_copy, reference, pointer):
    """Before: a missing or empty `latest` started over at step 1 and overwrote metrics.jsonl."""
    latest = run_copy / "checkpoints" / "latest"
    text = {"empty": "", "older": "step-000001\n", "gone": "step-000007\n", "outside": "../../../etc\n"}
    if pointer == "missing":
        latest.unlink()
    else:
        latest.write_text(text[pointer])
    before = read_metrics(run_copy)
    summary = train(tiny_config(models, run_copy, **FOUR))
    assert summary["resumed_from"] == str(ckpt(run_copy, 2))  # the newest by content, not by pointer
    rows = read_metrics(run_copy)
    assert rows[:2] == before  # the earlier rows are kept as they were (timings included), not recomputed
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert_same_run(run_copy, reference)
    assert latest.read_text() == "step-000004\n"


def test_stale_higher_numbered_folder_does_not_delete_new_checkpoints(models, run_copy, reference):
    """Before: cleanup kept the highest folder NAME, so step-000099 survived and each new checkpoint was
    deleted as soon as it was written. Here step-000099 is this run's step-2 checkpoint, renamed."""
    os.rename(ckpt(run_copy, 2), ckpt(run_copy, 99))
    summary = train(tiny_config(models, run_copy, **FOUR))
    assert summary["resumed_from"] == str(ckpt(run_copy, 99))  # its state.json says step 2
    assert sorted(p.name for p in (run_copy / "checkpoints").iterdir()) == ["latest", "step-000004"]
    assert latest_checkpoint(run_copy) == ckpt(run_copy, 4)
    assert_same_run(run_copy, reference)


def test_cleanup_keeps_the_new_checkpoint_over_a_stale_one_of_another_run(models, stopped_run, tmp_path):
    """A complete step-000099 (content step 99) of another run: the checkpoints written next survive it."""
    out = tmp_path / "run"
    shutil.copytree(ckpt(stopped_run, 2), ckpt(out, 99))
    state = json.loads((ckpt(out, 99) / "state.json").read_text())
    (ckpt(out, 99) / "state.json").write_text(json.dumps({**state, "step": 99}))
    assert latest_checkpoint(out) == ckpt(out, 99)
    half = out / "checkpoints" / ".tmp-step-000050-4242"  # and a half-written folder of a killed process
    half.mkdir()
    (half / "optim.pt").write_bytes(b"PK")
    trainer = PPOTrainer(tiny_config(models, out, seed=7, **FOUR))
    for step in (1, 2, 3):
        trainer.step()
        assert trainer.save_checkpoint(out, keep=2) == ckpt(out, step)
        assert latest_checkpoint(out) == ckpt(out, step)
    assert sorted(p.name for p in ckpt(out, 1).parent.iterdir()) == ["latest", "step-000002", "step-000003"]


def test_checkpoint_from_before_this_change_resumes(models, run_copy, reference):
    """Older state.json files hold only the step and the settings (no file sizes, no metrics row)."""
    for step in (1, 2):
        state = json.loads((ckpt(run_copy, step) / "state.json").read_text())
        (ckpt(run_copy, step) / "state.json").write_text(json.dumps({"step": step, "config": state["config"]}))
    assert train(tiny_config(models, run_copy, **FOUR))["resumed_from"] == str(ckpt(run_copy, 2))
    assert_same_run(run_copy, reference)


def test_keys_a_callback_adds_to_the_metrics_do_not_block_resume(models, tmp_path, reference):
    out = tmp_path / "run"

    def add_and_stop(metrics, trainer):
        metrics["eval_note"] = "mine"  # written to metrics.jsonl from the next step on
        return metrics["step"] == 3

    train(tiny_config(models, out, **FOUR), callback=add_and_stop)
    assert train(tiny_config(models, out, **FOUR))["resumed_from"] == str(ckpt(out, 3))
    assert read_metrics(out)[0]["eval_note"] == "mine"
    assert_same_run(out, reference)


def test_metrics_without_a_checkpoint_are_refused_not_overwritten(models, run_copy):
    shutil.rmtree(run_copy / "checkpoints")
    before = (run_copy / "metrics.jsonl").read_bytes()
    with pytest.raises(RunFolderError, match=r"metrics for 2 step\(s\) but no checkpoint.*--no-resume"):
        train(tiny_config(models, run_copy, **FOUR))
    assert (run_copy / "metrics.jsonl").read_bytes() == before
    summary = train(tiny_config(models, run_copy, resume=False, **FOUR))  # the way out the message names
    assert summary["resumed_from"] is None and [r["step"] for r in read_metrics(run_copy)] == [1, 2, 3, 4]


def test_metrics_that_do_not_reach_the_checkpoint_are_refused(models, run_copy):
    lines = (run_copy / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run_copy / "metrics.jsonl").write_text(lines[0])
    with pytest.raises(RunFolderError, match=r"step-000002 is at step 2 but .*metrics.jsonl holds steps 1-1"):
        train(tiny_config(models, run_copy, **FOUR))
    (run_copy / "metrics.jsonl").unlink()
    with pytest.raises(RunFolderError, match="holds no rows"):
        train(tiny_config(models, run_copy, **FOUR))


def test_metrics_of_another_run_are_refused(models, run_copy, tmp_path):
    """The issue's aftermath: checkpoints of one run next to metrics a restarted run wrote over."""
    other = tmp_path / "other"
    train(tiny_config(models, other, seed=5, **{**FOUR, "steps": 3}))
    shutil.copy(other / "metrics.jsonl", run_copy / "metrics.jsonl")
    before = (run_copy / "metrics.jsonl").read_bytes()
    with pytest.raises(RunFolderError, match="come from different runs"):
        train(tiny_config(models, run_copy, **FOUR))
    assert (run_copy / "metrics.jsonl").read_bytes() == before


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {  # name -> (how, the file the error must name)
    "truncated policy": (lambda f: _truncate(f / "policy.safetensors"), "policy.safetensors"),
    "empty critic": (lambda f: (f / "critic.safetensors").write_bytes(b""), "critic.safetensors"),
    "garbage optim": (lambda f: (f / "optim.pt").write_bytes(b"garbage" * 100), "optim.pt"),
    "missing optim": (lambda f: (f / "optim.pt").unlink(), "optim.pt"),
    "invalid state": (lambda f: (f / "state.json").write_text('{"step": 2, "config"'), "state.json"),
    "absent state": (lambda f: (f / "state.json").unlink(), "state.json"),
    "state without step": (lambda f: (f / "state.json").write_text('{"step": "2", "config": {}}'), "state.json"),
    # same size, a broken header: passes the size check, fails the header check
    "policy header": (lambda f: (f / "policy.safetensors").write_bytes(
        b"\xff" * 8 + (f / "policy.safetensors").read_bytes()[8:]), "policy.safetensors"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_newest_checkpoint_falls_back_to_an_older_complete_one(models, run_copy, reference, damage):
    how, name = DAMAGES[damage]
    how(ckpt(run_copy, 2))
    with pytest.warns(UserWarning, match=f"skipped damaged checkpoint.*{name}"):
        summary = train(tiny_config(models, run_copy, **FOUR))
    assert summary["resumed_from"] == str(ckpt(run_copy, 1))
    assert any(name in note for note in summary["notes"])
    assert_same_run(run_copy, reference)


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_only_checkpoint_is_named_in_a_clear_error(models, run_copy, damage):
    how, name = DAMAGES[damage]
    shutil.rmtree(ckpt(run_copy, 1))
    how(ckpt(run_copy, 2))
    before = (run_copy / "metrics.jsonl").read_bytes()
    with pytest.raises(RunFolderError) as err:
        train(tiny_config(models, run_copy, **FOUR))
    assert str(ckpt(run_copy, 2) / name) in str(err.value)
    assert "--no-resume" in str(err.value) and "Put back the damaged file" in str(err.value)
    assert (run_copy / "metrics.jsonl").read_bytes() == before and ckpt(run_copy, 2).is_dir()


def test_damage_found_only_when_loading_falls_back_too(models, run_copy, reference):
    """optim.pt with a valid zip directory but a damaged pickle passes the scan and fails torch.load."""
    import zipfile

    path = ckpt(run_copy, 2) / "optim.pt"
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    pickle_name = next(n for n in entries if n.endswith("data.pkl"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for n, data in entries.items():
            z.writestr(n, b"\x80\x02garbage" if n == pickle_name else data)
    state = json.loads((ckpt(run_copy, 2) / "state.json").read_text())
    state["files"]["optim.pt"] = path.stat().st_size  # as if written so: only loading can tell
    (ckpt(run_copy, 2) / "state.json").write_text(json.dumps(state))
    with pytest.warns(UserWarning, match="optim.pt cannot be loaded"):
        summary = train(tiny_config(models, run_copy, **FOUR))
    assert summary["resumed_from"] == str(ckpt(run_copy, 1))
    assert_same_run(run_copy, reference)


def test_leftovers_of_a_killed_process_are_removed(models, run_copy, reference):
    half = run_copy / "checkpoints" / ".tmp-step-000003-4242"
    half.mkdir()
    (half / "policy.safetensors").write_bytes(b"\0" * 100)
    (run_copy / ".tmp-metrics.jsonl-4242").write_text('{"step": 1')
    (run_copy / ".tmp-policy-4242").mkdir()
    (run_copy / ".old-policy-4242").mkdir()
    (run_copy / ".tmp-not-ours").write_text("a file of the user's: OUT may be any folder")
    seen = []
    train(tiny_config(models, run_copy, **FOUR), callback=lambda m, t: seen.append(sorted(
        p.name for p in [*run_copy.glob(".[to]*"), *(run_copy / "checkpoints").glob(".*")])))
    assert seen[0] == [".tmp-not-ours"]  # ours are gone by the first step of the resumed run
    assert_same_run(run_copy, reference)


def test_moved_run_folder_resumes_to_the_same_result(models, run_copy, reference, tmp_path):
    moved = tmp_path / "elsewhere" / "moved-run"
    moved.parent.mkdir()
    os.rename(run_copy, moved)
    # also harmless: progress, keep_checkpoints, save_every, device, rm_batch_size, a longer budget then back
    summary = train(tiny_config(models, moved, keep_checkpoints=3, save_every=3, device="cpu", rm_batch_size=5,
                                progress=False, **FOUR))
    assert summary["resumed_from"] == str(ckpt(moved, 2))
    assert_same_run(moved, reference)


def test_settings_differences_allowed_and_refused(models, tmp_path):
    base = tiny_config(models, tmp_path / "a")
    harmless = dict(steps=9, save_every=3, keep_checkpoints=4, progress=True, resume=False,
                    threads=2, device="cpu", rm_batch_size=3)
    assert base.differences(tiny_config(models, tmp_path / "b", **harmless)) == {}  # out differs too
    relative = os.path.relpath(models["policy"])  # the same folder, spelled another way
    assert base.differences(tiny_config(models, tmp_path / "a", policy=relative)) == {}
    for name, value in dict(kl_coef=0.5, seed=3, method="sparse", batch_size=8, amp="bf16",
                            policy=models["rm"], prompts=str(Path(models["root"]) / "other.txt")).items():
        if name == "prompts":
            Path(value).write_text("another prompt\n")
        assert set(base.differences(tiny_config(models, tmp_path / "a", **{name: value}))) == {name}
    saved = base.to_dict()
    del saved["whiten_advantages"]  # a checkpoint from before a field existed: it had the default
    assert base.differences(saved) == {}
    assert base.differences({**saved, "new_knob": 1}) == {"new_knob": (1, None)}
    gone = {**saved, "prompts": str(tmp_path / "deleted.txt")}  # a saved config is not validated again
    assert set(base.differences(gone)) == {"prompts"}


def test_resume_with_other_settings_names_them(models, run_copy):
    with pytest.raises(ValueError, match=r"other settings \(kl_coef: 0.05 -> 0.5\).*--no-resume"):
        train(tiny_config(models, run_copy, kl_coef=0.5, **FOUR))


def test_summary_is_strict_json_without_nan(models, tmp_path):
    cfg = tiny_config(models, tmp_path / "run", steps=1)
    trainer = PPOTrainer(cfg)
    step = trainer.step
    trainer.step = lambda: {**step(), "explained_variance": float("nan"), "value_mean": float("inf")}
    train(cfg, trainer=trainer)
    text = (tmp_path / "run" / "summary.json").read_text()

    def no_constants(name):
        raise AssertionError(f"{name} in summary.json")

    final = json.loads(text, parse_constant=no_constants)["final"]
    assert final["explained_variance"] is None and final["value_mean"] is None


# ----------------------------------------------------------------------------- a full disk


@pytest.mark.skipif(not (os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)),
                    reason="needs Linux's /dev/full")
def test_full_disk_while_writing_metrics_is_named_and_the_rerun_resumes(models, run_copy, reference):
    """A real ENOSPC: the temporary file of metrics.jsonl's next write is a link to /dev/full."""
    trap = run_copy / f".tmp-metrics.jsonl-{os.getpid()}"

    def fill_the_disk_after_step_3(metrics, trainer):
        if metrics["step"] == 3:
            trap.symlink_to("/dev/full")

    expected = re.escape(f"the disk is full: cannot write {run_copy / 'metrics.jsonl'} (No space left on device);")
    with pytest.raises(RunFolderError, match=expected + ".* free on the disk"):
        train(tiny_config(models, run_copy, **FOUR), callback=fill_the_disk_after_step_3)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # the device itself is untouched
    assert not trap.exists() and not trap.is_symlink()  # the failed temporary file is cleaned up
    assert [r["step"] for r in read_metrics(run_copy)] == [1, 2, 3]  # the last complete write stays
    summary = train(tiny_config(models, run_copy, **FOUR))  # "run the same command again"
    assert summary["resumed_from"] == str(ckpt(run_copy, 3))
    assert_same_run(run_copy, reference)


def test_write_errors_say_when_the_disk_is_full(tmp_path, monkeypatch):
    import errno
    from types import SimpleNamespace

    from safetensors import SafetensorError

    from red_core.train.checkpoints import write_error

    target = tmp_path / "checkpoints" / "step-000002"
    enospc = OSError(errno.ENOSPC, "No space left on device")
    if os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode):
        with pytest.raises(OSError) as real, open("/dev/full", "w") as f:
            f.write("x")
            f.flush()
        enospc = real.value  # the kernel's own
    # what safetensors raises on ENOSPC (seen on a full tmpfs), and torch.save's short-write message
    rust = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    short = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    for err in (enospc, rust, OSError(errno.EDQUOT, "Disk quota exceeded")):
        message = str(write_error(target, err))
        assert message.startswith(f"the disk is full: cannot write {target}") and "free on the disk" in message
    assert "disk is full" not in str(write_error(target, short))  # plenty of space: not called a full disk
    assert "Permission denied" in str(write_error(target, PermissionError(errno.EACCES, "Permission denied")))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: SimpleNamespace(total=10**9, used=10**9 - 4096, free=4096))
    assert str(write_error(target, short)).startswith("the disk is full")  # torch's message + no space left
    assert "4.0 KiB free" in str(write_error(target, short))


DISK_SCRIPT = """
import contextlib, io, json, shutil, subprocess, sys
from pathlib import Path
from red_core.__main__ import main
flags, disks, result = json.loads(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3])
report = {}
for disk, extra in disks:
    out, runs = Path(disk) / "run", []
    for attempt in range(2):
        err, std = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
            rc = main(["train", *flags, *extra, "--out", str(out)])
        runs.append({"rc": rc, "stderr": err.getvalue(), "stdout": std.getvalue(),
                     "left": sorted(p.name for p in out.rglob(".tmp-*"))})
        subprocess.run(["mount", "-o", "remount,size=16m", disk], check=True)  # free space: a bigger disk
    shutil.copytree(out, result / Path(disk).name)
    report[Path(disk).name] = runs
(result / "report.json").write_text(json.dumps(report))
"""


def _user_namespaces() -> bool:
    """Whether this user may mount a tmpfs in a private mount namespace (it is gone when the command ends)."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            'mount -t tmpfs -o size=64k tmpfs "$0"', tempfile.gettempdir()], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _user_namespaces(), reason="needs unshare and unprivileged user namespaces for a small tmpfs")
def test_full_disk_on_a_small_file_system_exits_2_then_resumes(models, reference, tmp_path):
    """Real small disks (tmpfs in a user namespace, no root needed). A checkpoint takes ~730 KiB: on
    900 KiB the disk fills while safetensors writes step 2's checkpoint, on 1100 KiB while torch.save
    writes its optim.pt, on 800 KiB (one step) while the final policy is saved. `python -m red_core
    train` says so and exits 2; once the disk has grown, the same command finishes the same run."""
    disks = {"disk-900k": ("Error while serializing", "checkpoints", []),
             "disk-1100k": ("No space left on device", "checkpoints", []),
             "disk-800k": ("No space left on device", "run/policy (", ["--steps", "1"])}
    for name in disks:
        (tmp_path / name).mkdir()
    result = tmp_path / "result"
    result.mkdir()
    script = tmp_path / "disk.py"
    script.write_text(DISK_SCRIPT)
    mounts = " && ".join(f"mount -t tmpfs -o size={name[5:]} tmpfs {tmp_path / name}" for name in disks)
    plan = json.dumps([(str(tmp_path / name), extra) for name, (*_, extra) in disks.items()])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                           f'{mounts} && exec "{sys.executable}" "$0" "$1" "$2" "$3"', str(script),
                           json.dumps(cli_flags(models, "unused")), plan, str(result)], env=env,  # later flags win
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((result / "report.json").read_text())
    for name, (writer, where, _) in disks.items():
        full, again = report[name]
        assert full["rc"] == 2 and "Traceback" not in full["stderr"], full["stderr"]
        assert f"error: the disk is full: cannot write {tmp_path / name / 'run'}" in full["stderr"]
        assert writer in full["stderr"] and where in full["stderr"] and full["left"] == []  # no half-written file
        assert again["rc"] == 0 and "resumed from" in again["stdout"], again["stderr"]
        if name != "disk-800k":
            assert_same_run(result / name, reference)
    assert (result / "disk-800k" / "policy" / "model.safetensors").is_file()


# ----------------------------------------------------------------------------- the command line


def cli_flags(models, out, *extra):
    return ["--policy", models["policy"], "--reward-model", models["rm"], "--prompts", models["prompts"], "--out",
            str(out), "--steps", "4", "--save-every", "1", "--batch-size", "4", "--minibatch-size", "2",
            "--ppo-epochs", "1", "--max-new-tokens", "6", "--threads", "1", "--actor-lr", "1e-3", "--critic-lr",
            "1e-3", "--no-progress", *extra]


def run_cli(argv, capsys) -> tuple[int, str]:
    """`python -m red_core train ...` in this process: (exit status, stderr)."""
    from red_core.__main__ import main

    rc = main(["train", *argv])
    return rc, capsys.readouterr().err


def _no_checkpoints(out):
    shutil.rmtree(out / "checkpoints")


def _only_damaged(out):
    shutil.rmtree(ckpt(out, 1))
    _truncate(ckpt(out, 2) / "optim.pt")


def _garbage_row(out):
    with open(out / "metrics.jsonl", "a") as f:
        f.write("{not json\n")


def _checkpoints_file(out):
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").write_text("not a folder")


CLI_FAULTS = {  # name -> (break the copied run folder, what stderr must say)
    "metrics without checkpoint": (_no_checkpoints, "holds metrics for 2 step(s) but no checkpoint"),
    "only checkpoint damaged": (_only_damaged, "step-000002/optim.pt has"),
    "damaged metrics line": (_garbage_row, "metrics.jsonl line 3 is not a metrics row"),
    "checkpoints is a file": (_checkpoints_file, "checkpoints is a file, not a folder of checkpoints"),
}


@pytest.mark.parametrize("fault", list(CLI_FAULTS))
def test_cli_run_folder_faults_exit_2_with_a_message(models, run_copy, capsys, fault):
    breaks, says = CLI_FAULTS[fault]
    breaks(run_copy)
    before = sorted((p.relative_to(run_copy), p.read_bytes()) for p in run_copy.rglob("*") if p.is_file())
    rc, err = run_cli(cli_flags(models, run_copy), capsys)
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err
    assert says in err and ("--no-resume" in err or fault == "checkpoints is a file")
    after = sorted((p.relative_to(run_copy), p.read_bytes()) for p in run_copy.rglob("*") if p.is_file())
    assert after == before  # nothing written, nothing deleted


def test_cli_bad_output_paths_exit_2_with_a_message(models, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    cases = [(a_file, f"the output path {a_file} is a file, not a folder"),
             (a_file / "run", f"cannot create the output folder {a_file / 'run'}: {a_file} is a file")]
    if Path("/sys/kernel").is_dir():  # Linux: no one may create a folder in /sys, root included
        cases.append((Path("/sys/red-core-run"), "cannot write /sys/red-core-run: "))
    for out, says in cases:
        rc, err = run_cli(cli_flags(models, out), capsys)
        assert rc == 2 and "Traceback" not in err and says in err, err
        assert "disk is full" not in err
    assert a_file.read_text() == "mine"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_cli_read_only_output_folder_exits_2(models, tmp_path, capsys):
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o500)
    try:
        rc, err = run_cli(cli_flags(models, out), capsys)
    finally:
        out.chmod(0o700)
    assert rc == 2 and f"cannot write {out / '.lock'}: Permission denied" in err


def test_cli_other_settings_and_busy_folder_exit_2(models, run_copy, capsys):
    rc, err = run_cli(cli_flags(models, run_copy, "--kl-coef", "0.5"), capsys)
    assert rc == 2 and "other settings (kl_coef: 0.05 -> 0.5)" in err
    import fcntl

    with open(run_copy / ".lock", "a") as held:  # as another process training into OUT would
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        rc, err = run_cli(cli_flags(models, run_copy), capsys)
    assert rc == 2 and f"another process is training into {run_copy}" in err
    assert [r["step"] for r in read_metrics(run_copy)] == [1, 2]


def test_a_second_run_into_the_same_folder_is_refused(models, tmp_path):
    out, refused = tmp_path / "run", []

    def start_another(metrics, trainer):
        with pytest.raises(RunFolderError, match="another process is training into") as err:
            train(tiny_config(models, out, steps=2))
        refused.append(str(err.value))

    train(tiny_config(models, out, steps=2), callback=start_another)
    assert len(refused) == 2 and [r["step"] for r in read_metrics(out)] == [1, 2]


def test_cli_ctrl_c_says_how_to_continue(models, run_copy, capsys, monkeypatch):
    step = PPOTrainer.step

    def interrupted_at_step_4(self):
        if self.step_index == 3:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(PPOTrainer, "step", interrupted_at_step_4)
    rc, err = run_cli(cli_flags(models, run_copy), capsys)
    assert rc == 130 and "run the same command again to continue" in err and "Traceback" not in err
    assert latest_checkpoint(run_copy) == ckpt(run_copy, 3)
    monkeypatch.setattr(PPOTrainer, "step", step)
    rc, err = run_cli(cli_flags(models, run_copy), capsys)
    assert rc == 0 and (run_copy / "policy").is_dir()
