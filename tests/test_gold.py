"""The gold reward (VADER compound of prompt + response): one function for training logs and evaluation."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from test_train import models, tiny_config  # noqa: F401  (module fixture: a tiny policy and RM)

from red_core.gold import gold_scores
from red_core.recipes.defaults import VaderLabeller
from red_core.train import PPOTrainer, TrainConfig, read_metrics, train


def test_gold_is_vader_compound_of_prompt_plus_response():
    prompts, responses = ["The movie was", "My day", ""], [" great!", " was not good at all.", "awful"]
    vader = VaderLabeller()
    expected = [vader.compound(p + r) for p, r in zip(prompts, responses)]
    np.testing.assert_array_equal(gold_scores(prompts, responses), expected)
    assert expected[0] > 0.5 and expected[1] < 0 and expected[2] < 0  # the labeller behaves as VADER does


def test_gold_refuses_bad_input():
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        gold_scores(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="unknown gold reward"):
        gold_scores(["a"], ["b"], kind="none")
    with pytest.raises(ValueError, match="gold must be one of"):
        TrainConfig(gold="bleu")


def test_training_logs_the_gold_reward_of_its_own_rollouts(models, tmp_path):  # noqa: F811
    cfg = tiny_config(models, tmp_path / "run", gold="vader", steps=1)
    trainer = PPOTrainer(cfg)
    ro = trainer.rollout(0)
    texts = [trainer.tokenizer.decode(r, skip_special_tokens=True) for r in ro.response_lists()]
    np.testing.assert_array_equal(trainer.gold(ro), gold_scores(ro.prompt_texts, texts))
    # The logged metric is the mean of that same function on the step's rollouts (same seeds, same samples).
    summary = train(cfg)
    row = summary["metrics"][0]
    trainer2 = PPOTrainer(cfg)  # rollouts of step s are seeded by (seed, s): the same samples again
    assert row["gold_mean"] == pytest.approx(float(np.mean(trainer2.gold(trainer2.rollout(0)))), abs=1e-12)
    assert read_metrics(cfg.out)[0]["gold_mean"] == row["gold_mean"]


def test_gold_off_logs_nan_and_is_not_a_training_setting(models, tmp_path):  # noqa: F811
    summary = train(tiny_config(models, tmp_path / "run", steps=1))
    assert np.isnan(summary["metrics"][0]["gold_mean"])
    # gold is only logged: resuming with it switched on continues the same run
    more = train(tiny_config(models, tmp_path / "run", steps=2, gold="vader"))
    assert more["steps_done"] == 2 and np.isfinite(more["metrics"][-1]["gold_mean"])
