"""Training science: the adaptive KL controller and REINFORCE++ (critic-free) beside RED-PPO.

The tiny in-process models and run settings are those of tests/test_train.py (its `models` fixture
and `tiny_config`); PPO's own numbers and resume are tested there.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import _flat_weights, models, tiny_config  # noqa: F401 - `models` is a fixture used below

from red_core.train import AdaptiveKL, FixedKL, TrainConfig, read_metrics, train
from red_core.train.checkpoints import METRIC_COLUMNS, latest_checkpoint, strict_json
from red_core.train.cli import add_train_args, config_from_args
from red_core.train.gae import reinforce_returns, reinforce_returns_loop
from red_core.train.kl import kl_controller
from red_core.train.ppo import PPOTrainer

# ----------------------------------------------------------------------------- the KL controller


def test_adaptive_kl_hand_worked_sequence():
    # target 2 nats, horizon 100 rollouts, 10 rollouts a step: β *= 1 + e·10/100, e = clip(KL/2 − 1, ±0.2)
    ctl = AdaptiveKL(init=0.1, target=2.0, horizon=100)
    ctl.update(3.0, 10)  # e = 0.5, clipped to 0.2: β = 0.1 · 1.02
    assert ctl.value == pytest.approx(0.102, rel=1e-12)
    ctl.update(1.8, 10)  # e = −0.1 (inside the clip): β = 0.102 · 0.99
    assert ctl.value == pytest.approx(0.10098, rel=1e-12)
    ctl.update(0.0, 10)  # e = −1, clipped to −0.2: β = 0.10098 · 0.98
    assert ctl.value == pytest.approx(0.0989604, rel=1e-12)
    ctl.update(2.2, 10)  # e = 0.1: β = 0.0989604 · 1.01
    assert ctl.value == pytest.approx(0.099950004, rel=1e-12)
    ctl.update(-1.0, 50)  # a negative k1 estimate: e = −1.5, clipped to −0.2; 50 rollouts: β · 0.9
    assert ctl.value == pytest.approx(0.0899550036, rel=1e-12)
    fixed = FixedKL(0.05)
    fixed.update(100.0, 10)
    assert fixed.value == 0.05
    assert isinstance(kl_controller(0.05, None, 10), FixedKL) and isinstance(kl_controller(0.05, 1.0, 10), AdaptiveKL)
    with pytest.raises(ValueError, match="target must be > 0"):
        AdaptiveKL(0.1, 0.0, 100)


def test_algo_and_kl_settings_are_checked_and_on_the_command_line(models, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="algo must be one of"):
        TrainConfig(algo="grpo")
    with pytest.raises(ValueError, match="kl_target must be > 0"):
        TrainConfig(kl_target=0.0)
    with pytest.raises(ValueError, match="kl_horizon must be >= 1"):
        TrainConfig(kl_horizon=0)
    parser = add_train_args(argparse.ArgumentParser())
    help_text = " ".join(parser.format_help().split())
    assert "--algo {ppo,reinforce}" in help_text and "--kl-target KL_TARGET" in help_text
    assert "target KL in nats per response" in help_text and "--kl-horizon" in help_text
    cfg = config_from_args(parser.parse_args(["--algo", "reinforce", "--kl-target", "3", "--out", str(tmp_path)]))
    assert (cfg.algo, cfg.kl_target, cfg.kl_horizon, cfg.kl_coef) == ("reinforce", 3.0, 10000, 0.05)
    base = tiny_config(models, tmp_path / "a")
    assert (base.algo, base.kl_target) == ("ppo", None)  # the defaults: PPO with a fixed β
    for name, value in dict(algo="reinforce", kl_target=2.0, kl_horizon=50).items():  # each refuses a resume
        assert set(base.differences(tiny_config(models, tmp_path / "a", **{name: value}))) == {name}


# ----------------------------------------------------------------------------- REINFORCE++ returns


def test_reinforce_returns_hand_example_dense_vs_sparse():
    # RED credit of prefix scores [0.2, 0.5, 0.4] after R(x, ∅) = 0.1 is [0.1, 0.3, −0.1]; with β = 0 and γ = 1
    # G_t = R(x, y) − R(x, y_<t) = 0.4 − [0.1, 0.2, 0.5]: each token sees the score change from itself on.
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    dense = reinforce_returns(torch.tensor([[0.1, 0.3, -0.1, 9.0]], dtype=torch.float64), mask)
    np.testing.assert_allclose(dense.numpy(), [[0.3, 0.2, -0.1, 0.0]], atol=1e-12)  # padding: no return
    sparse = reinforce_returns(torch.tensor([[0.0, 0.0, 0.4, 0.0]], dtype=torch.float64), mask)
    np.testing.assert_allclose(sparse.numpy(), [[0.4, 0.4, 0.4, 0.0]], atol=1e-12)  # the same for every token
    halved = reinforce_returns(torch.tensor([[1.0, 2.0, 3.0, 0.0]]), mask, gamma=0.5)
    assert halved.tolist() == [[1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3.0, 0.0]]


def test_reinforce_returns_vectorised_equal_the_loop():
    g = torch.Generator().manual_seed(3)
    rewards = torch.randn(7, 11, generator=g, dtype=torch.float64)
    lengths = torch.tensor([11, 1, 4, 0, 10, 2, 6])  # ragged, one empty row
    mask = (torch.arange(11)[None] < lengths[:, None]).float()
    for gamma in (1.0, 0.9, 0.5, 0.0):
        got = reinforce_returns(rewards, mask, gamma)
        np.testing.assert_allclose(got.numpy(), reinforce_returns_loop(rewards, mask, gamma), atol=1e-10)
        assert torch.all(got[mask == 0] == 0)


# ----------------------------------------------------------------------------- runs


def _numbers(rows):
    """Each row's trainer columns less the timings (NaN written as None so that NaN equals NaN)."""
    return [json.loads(strict_json({k: r[k] for k in METRIC_COLUMNS if not k.startswith("time_") and k != "step_time"}))
            for r in rows]


def test_reinforce_run_trains_without_a_critic_and_resumes_exactly(models, tmp_path):  # noqa: F811
    kw = dict(algo="reinforce", steps=3)
    trainer = PPOTrainer(tiny_config(models, tmp_path / "full", **kw))
    assert trainer.critic is None and trainer.critic_opt is None and "no critic" in trainer.critic_how
    full = train(tiny_config(models, tmp_path / "full", **kw), trainer=trainer)
    before, after = _flat_weights(Path(models["policy"])), _flat_weights(tmp_path / "full" / "policy")
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the policy learned
    rows = read_metrics(tmp_path / "full")
    for r in rows:
        assert np.isfinite([r["policy_loss"], r["kl"], r["reward_mean"]]).all() and r["kl_coef"] == 0.05
        assert np.isnan([r["value_loss"], r["explained_variance"], r["value_mean"]]).all()
    header = (tmp_path / "full" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == list(METRIC_COLUMNS)

    cut = tmp_path / "cut"
    stopped = train(tiny_config(models, cut, **kw), callback=lambda m, t: m["step"] == 2)
    assert stopped["stopped"] and latest_checkpoint(cut).name == "step-000002"
    files = sorted(p.name for p in latest_checkpoint(cut).iterdir())
    assert files == ["optim.pt", "policy.safetensors", "state.json"]  # no critic file
    state = json.loads((latest_checkpoint(cut) / "state.json").read_text())
    assert state["config"]["algo"] == "reinforce" and "critic.safetensors" not in state["files"]
    with pytest.raises(ValueError, match=r"other settings \(algo: 'reinforce' -> 'ppo'\)"):
        train(tiny_config(models, cut, **{**kw, "algo": "ppo"}))
    resumed = train(tiny_config(models, cut, **kw))
    assert resumed["resumed_from"].endswith("step-000002")
    assert _numbers(read_metrics(cut)) == _numbers(full["metrics"])
    a, b = _flat_weights(tmp_path / "full" / "policy"), _flat_weights(cut / "policy")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_adaptive_kl_ppo_run_logs_beta_and_resumes_with_it(models, tmp_path):  # noqa: F811
    # target 1 nat, horizon 10 rollouts, 4 rollouts a step: β moves by a factor 1 ± 0.2·4/10 at most.
    kw = dict(steps=3, kl_target=1.0, kl_horizon=10)
    full = train(tiny_config(models, tmp_path / "full", **kw))
    rows = full["metrics"]
    assert rows[0]["kl_coef"] == 0.05  # step 1 uses the initial β
    assert abs(rows[0]["kl"]) < 1e-5  # ... and samples from the reference itself: KL 0, e clipped to −0.2
    assert rows[1]["kl_coef"] == pytest.approx(0.05 * (1 - 0.2 * 4 / 10), rel=1e-12)  # 0.046
    for prev, row in zip(rows, rows[1:]):  # β of step s+1 = the controller after step s
        e = min(max(prev["kl"] / 1.0 - 1, -0.2), 0.2)
        assert row["kl_coef"] == pytest.approx(prev["kl_coef"] * (1 + e * 4 / 10), rel=1e-12)
    assert len({r["kl_coef"] for r in rows}) == 3

    cut = tmp_path / "cut"
    train(tiny_config(models, cut, **kw), callback=lambda m, t: m["step"] == 2)
    state = json.loads((latest_checkpoint(cut) / "state.json").read_text())
    assert state["kl_coef"] == rows[2]["kl_coef"]  # saved: the β step 3 will use
    assert (latest_checkpoint(cut) / "critic.safetensors").is_file()  # PPO keeps its critic
    resumed = train(tiny_config(models, cut, **kw))
    assert resumed["resumed_from"].endswith("step-000002")
    assert _numbers(read_metrics(cut)) == _numbers(rows)  # bit-exact, β included
    a, b = _flat_weights(tmp_path / "full" / "policy"), _flat_weights(cut / "policy")
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match=r"other settings \(kl_target: 1.0 -> None, kl_horizon: 10 -> 10000\)"):
        train(tiny_config(models, cut, steps=3))
