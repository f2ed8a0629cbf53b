"""Build assets/models/policy-red-kl: RED-PPO stopped at a KL budget, beside the over-optimised policy-red.

Run from the repository root:

    python -m red_core.recipes.policy_red_kl                # train (stopping at the budget), evaluate, ship
    python -m red_core.recipes.policy_red_kl --cards-only   # rewrite the model card from OUT/evaluation.json

The run is the default task's RED run (`policy_red.run_config`: policy-base, the bundled reward model, the
benchmark's budget, the gold reward logged) with `kl_coef`, stopped after the first step whose KL to the base
policy, smoothed over the last 5 steps, reaches `kl_budget` nats. It is the teacher's "healthy optimisation"
example: the gold reward (VADER, which the RM imitates; red_core/gold.py) has risen, and the samples are not yet
the collapsed "best best." of policy-red, which ran on to 7-8 nats. About a minute of PPO on 2 CPU cores.

Steps:

1. run        `run_config("red", seed, kl_coef=..., gold="vader")`, stopped at the budget; its policy saved
2. evaluate   the same evaluation as policy-red (policy_red.evaluate: fresh samples, same seeds as policy-base,
              RM reward, gold reward, KL to policy-base, win rate)
3. ship       OUT = the policy + metrics.csv + evaluation.json (with a one-line `description` the app lists) +
              README.md (templates/card_policy_red_kl.md), with its point on bench/bench_frontier.py's frontier
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from red_core.models import REPO_ROOT
from red_core.options import add_dataclass_args, option
from red_core.recipes import policy_red

DEFAULT_OUT_DIR = REPO_ROOT / "assets" / "models" / "policy-red-kl"
WINDOW = 5  # steps the stopping KL is smoothed over (as in bench/bench_frontier.py)

_opt = option


@dataclass
class PolicyRedKLConfig(policy_red.PolicyRecipe):
    """Every setting of the recipe. `PolicyRedKLConfig()` ships assets/models/policy-red-kl."""

    out_dir: str = _opt(str(DEFAULT_OUT_DIR), "output folder: the policy, its card and evaluation.json")
    kl_budget: float = _opt(3.0, "stop after the first step whose KL to policy-base (nats per response, mean of the "
                                 f"last {WINDOW} steps) reaches this")
    kl_coef: float = _opt(0.05, "β of the KL penalty (the shipped policy-red's)")
    seed: int = _opt(0, "training seed")
    run: str | None = _opt(None, "run folder (default: bench/results/runs/policy-red-kl); started over each time")
    results_dir: str = _opt(str(policy_red.RESULTS_DIR), "where bench/bench_frontier.py wrote frontier.json")

    def __post_init__(self):
        super().__post_init__()
        if not self.kl_budget > 0:
            raise ValueError(f"kl_budget must be > 0, got {self.kl_budget}")
        self.run = self.run or str(policy_red.RUNS_DIR / "policy-red-kl")


def train_to_budget(cfg: PolicyRedKLConfig) -> dict:
    """Train from scratch until the smoothed KL reaches the budget (or the step budget ends); save the policy."""
    from red_core.train import PPOTrainer, train

    assert cfg.run is not None
    policy_red.make_runs_dir(Path(cfg.run).parent)
    tc = policy_red.run_config("red", cfg.seed, cfg.run, kl_coef=cfg.kl_coef, gold="vader", resume=False,
                               progress=cfg.progress, **cfg.models)
    trainer = PPOTrainer(tc)
    kls: list[float] = []

    def at_budget(metrics: dict, _trainer) -> bool:
        kls.append(metrics["kl"])
        return len(kls) >= WINDOW and float(np.mean(kls[-WINDOW:])) >= cfg.kl_budget

    summary = train(tc, trainer=trainer, callback=at_budget)
    trainer.save_policy(Path(cfg.run) / "policy")  # the policy of the stopping step (train saves none when stopped)
    last = summary["metrics"][-WINDOW:]
    return {"stopped_at_step": trainer.step_index, "reached_budget": bool(summary["stopped"]),
            "smoothed_kl": float(np.mean([r["kl"] for r in last])),
            "smoothed_reward": float(np.mean([r["reward_mean"] for r in last])),
            "smoothed_gold": float(np.mean([r["gold_mean"] for r in last])), "config": tc.to_dict()}


def description(ev: dict, stop: dict, budget: float) -> str:
    """The one line the app's Policies tab lists, from the measured numbers."""
    return (f"RED-PPO stopped at a KL budget of {budget:g} nats (step {stop['stopped_at_step']}): RM reward "
            f"{ev['reward_before']:+.2f} → {ev['reward_after']:+.2f}, gold (VADER) {ev['gold_before']:+.2f} → "
            f"{ev['gold_after']:+.2f}, KL {ev['kl_to_base']:.1f}")


def build(cfg: PolicyRedKLConfig) -> dict:
    from red_core import load_reward_model
    from red_core.train.config import read_prompts

    stop = train_to_budget(cfg)
    run = Path(str(cfg.run))
    rm = load_reward_model(cfg.reward_model)
    ev = policy_red.evaluate(run / "policy", rm, read_prompts(None), stop["config"]["max_new_tokens"], base=cfg.policy,
                             eval_samples=cfg.eval_samples)
    print(f"policy-red-kl vs policy-base on {ev['n']} samples: reward {ev['reward_before']:+.3f} -> "
          f"{ev['reward_after']:+.3f}, gold {ev['gold_before']:+.3f} -> {ev['gold_after']:+.3f}, KL {ev['kl_to_base']:.3f}")
    frontier = policy_red.read_json(Path(cfg.results_dir) / "frontier.json")
    over = json.loads((policy_red.DEFAULT_OUT_DIR / "evaluation.json").read_text()) \
        if (policy_red.DEFAULT_OUT_DIR / "evaluation.json").exists() else {}
    evaluation = {"description": description(ev, stop, cfg.kl_budget), "eval": {"red": ev}, "stop": stop,
                  "kl_budget": cfg.kl_budget, "config": stop["config"],
                  "frontier_ends": [e for e in frontier.get("ends", []) if e["algo"] == "ppo"],
                  "over_optimised": over.get("eval", {}).get("red", {})}
    policy_red.ship(run, cfg.out_dir, evaluation, Path(cfg.results_dir) / "frontier.png", write_card)
    return evaluation


def write_card(out: Path, evaluation: dict) -> None:
    from huggingface_hub import ModelCardData

    from red_core.recipes import cards

    card_data = ModelCardData(license="bsd-3-clause", library_name="transformers", pipeline_tag="text-generation",
                              tags=["policy", "rlhf", "ppo", "red", "kl-budget", "offline-default"])
    cards.write_card(out, "policy_red_kl", card_data, ev=evaluation["eval"]["red"], stop=evaluation["stop"],
                     budget=evaluation["kl_budget"], config=evaluation["config"], ends=evaluation["frontier_ends"],
                     over=evaluation["over_optimised"], has_png=(out / "frontier.png").exists())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m red_core.recipes.policy_red_kl", description=__doc__.split("\n\n")[0])
    add_dataclass_args(parser, PolicyRedKLConfig, suppress_defaults=True)
    cfg = PolicyRedKLConfig(**vars(parser.parse_args(argv)))
    if cfg.cards_only:
        evaluation = json.loads((Path(cfg.out_dir) / "evaluation.json").read_text())
        write_card(Path(cfg.out_dir), evaluation)
        print(f"rewrote the model card in {cfg.out_dir}")
        return evaluation
    return build(cfg)


if __name__ == "__main__":
    main()
