"""RED-PPO trainer: reward assembly, GAE, rollout credit, a short run, resume after interruption."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json

import numpy as np
import pytest
import torch

from red_core import load_reward_model
from red_core.methods import compute_rewards
from red_core.scoring import PrefixScores
from red_core.testing import byte_bpe_tokenizer, tiny_causal_lm, tiny_reward_model
from red_core.train import TrainConfig, read_metrics, train
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

    def numbers(rows):
        return [{k: v for k, v in r.items() if not k.startswith("time_") and k != "step_time"} for r in rows]

    assert numbers(read_metrics(tmp_path / "cut")) == numbers(full["metrics"])
    a, b = _flat_weights(tmp_path / "full" / "policy"), _flat_weights(tmp_path / "cut" / "policy")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Resuming with different settings is refused rather than mixing two runs.
    with pytest.raises(ValueError, match="other settings"):
        train(tiny_config(models, tmp_path / "cut", **{**kw, "kl_coef": 0.5}))


def test_sigkilled_process_resumes_to_the_same_result(models, tmp_path):
    """A real kill (SIGKILL, no cleanup) mid-run; the rerun continues from the last checkpoint."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    kw = dict(steps=6, save_every=1)
    reference = train(tiny_config(models, tmp_path / "ref", **kw))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "red_core.train", "--policy", models["policy"], "--reward-model", models["rm"],
           "--prompts", models["prompts"], "--out", str(out), "--steps", "6", "--save-every", "1", "--batch-size", "4",
           "--minibatch-size", "2", "--ppo-epochs", "1", "--max-new-tokens", "6", "--threads", "1",
           "--actor-lr", "1e-3", "--critic-lr", "1e-3", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        ckpt = latest_checkpoint(out)
        if ckpt is not None and ckpt.name >= "step-000002":
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "policy").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout
    a, b = _flat_weights(tmp_path / "ref" / "policy"), _flat_weights(out / "policy")
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if not k.startswith("time_") and k != "step_time"} for r in reference["metrics"]]
    assert [{k: v for k, v in r.items() if not k.startswith("time_") and k != "step_time"}
            for r in read_metrics(out)] == strip
