"""Build assets/models/policy-red: policy-base after RED-PPO on the default task, with its model card.

Run from the repository root:

    python -m red_core.recipes.policy_red                 # evaluate the RED run (training it first if needed), ship it
    python -m red_core.recipes.policy_red --cards-only    # rewrite the model card from OUT/evaluation.json
    python -m red_core.recipes.policy_red --help          # every setting, with its help text

The policy shipped is the RED run of seed 0 that `python bench/bench_train.py runs` makes (in
bench/results/runs/red-s0), so the card's training curves, read from the benchmark's results in
bench/results (train_report.json, train_report_critic-policy.json, train_timing.json, train_curves.png),
describe it. When that run has no final policy yet, the recipe trains it first with the same settings
(`run_config`, resuming what is there; about 2 min of PPO steps on 2 CPU cores). Sections whose
benchmark results are missing show n/a.

Steps:

1. run        the RED run of `run_config("red", seed)`: policy-base, the default reward model and prompts
2. evaluate   the run's policy and, when finished, the sparse-PPO run of the same seed against policy-base:
              `--eval-samples` samples per prompt of assets/prompts.txt and policy, same seeds for both
              policies; mean reward, KL to policy-base, win rate
3. ship       OUT = the run's policy folder + metrics.csv + train_curves.png + evaluation.json +
              README.md (templates/card_policy_red.md), swapped in whole
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from red_core.models import DEFAULT_POLICY, REPO_ROOT
from red_core.options import add_dataclass_args, option

DEFAULT_OUT_DIR = REPO_ROOT / "assets" / "models" / "policy-red"
RESULTS_DIR = REPO_ROOT / "bench" / "results"  # what bench/bench_train.py writes
RUNS_DIR = RESULTS_DIR / "runs"  # its PPO runs (checkpoints: kept out of git by RUNS_DIR/.gitignore)
# The default-task budget: TrainConfig defaults (see red_core/train/config.py), written out here
# so the evidence and the shipped policy do not silently change when a default does.
BUDGET = dict(steps=60, batch_size=64, minibatch_size=16, ppo_epochs=2, max_new_tokens=16, actor_lr=3e-4, critic_lr=1e-4,
              kl_coef=0.05)
EVAL_SEED = 1000  # sampling seed of the first chunk of prompts; chunk i starts at EVAL_SEED + i


def run_config(method: str, seed: int, out: str | Path, **overrides):
    """The settings of a default-task run: BUDGET on top of TrainConfig (bench/bench_train.py runs these)."""
    from red_core.train import TrainConfig

    settings = {"save_every": 10, "threads": 1, **BUDGET, **overrides}
    return TrainConfig(method=method, seed=seed, out=str(out), **settings)


def make_runs_dir(folder: str | Path) -> Path:
    """The folder of the runs, made with a .gitignore that keeps its checkpoints (hundreds of MB) out of git."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# PPO runs of bench/bench_train.py: checkpoints, not results\n*\n")
    return folder


_opt = option  # a dataclass field with a help text (shown by --help)


@dataclass
class PolicyRecipe:
    """The settings every policy recipe shares: which models, how many evaluation samples, cards only."""

    eval_samples: int = _opt(8, "samples per prompt and policy in the before/after evaluation")
    policy: str | None = _opt(None, "start policy, the 'before' (default: assets/models/policy-base)")
    reward_model: str | None = _opt(None, "reward model (default: assets/models/reward)")
    progress: bool = _opt(True, "progress bar while training")
    cards_only: bool = _opt(False, "only rewrite OUT/README.md from OUT/evaluation.json (no training, no evaluation)")

    def __post_init__(self):
        if self.eval_samples < 1:
            raise ValueError(f"eval_samples must be >= 1, got {self.eval_samples}")

    @property
    def models(self) -> dict:
        """The policy / reward_model overrides given (empty: the assets/ defaults)."""
        return {k: v for k, v in (("policy", self.policy), ("reward_model", self.reward_model)) if v}


@dataclass
class PolicyRedConfig(PolicyRecipe):
    """Every setting of the recipe. `PolicyRedConfig()` ships RED seed 0 of the benchmark into assets/models/policy-red."""

    out_dir: str = _opt(str(DEFAULT_OUT_DIR), "output folder: the policy, its card and evaluation.json")
    seed: int = _opt(0, "which RED run is shipped (and which sparse run it is compared with)")
    run: str | None = _opt(None, "the RED run folder (default: bench/results/runs/red-sSEED, bench_train's run); "
                                 "trained first when it has no final policy")
    sparse_run: str | None = _opt(None, "a sparse-PPO run to compare with, used when finished "
                                        "(default: sparse-sSEED beside the RED run)")
    results_dir: str = _opt(str(RESULTS_DIR), "bench/bench_train.py results shown in the card (curves, timing, ablation)")

    def __post_init__(self):
        super().__post_init__()
        self.run = self.run or str(RUNS_DIR / f"red-s{self.seed}")
        self.sparse_run = self.sparse_run or str(Path(self.run).with_name(f"sparse-s{self.seed}"))

    @property
    def run_dir(self) -> str:
        """The RED run folder (`run`, filled in by __post_init__)."""
        if self.run is None:
            raise ValueError("PolicyRedConfig.run is None: leave it unset for the default run folder")
        return self.run

    @property
    def sparse_run_dir(self) -> str:
        """The sparse run folder (`sparse_run`, filled in by __post_init__)."""
        if self.sparse_run is None:
            raise ValueError("PolicyRedConfig.sparse_run is None: leave it unset for the default beside the RED run")
        return self.sparse_run


# ----------------------------------------------------------------------------- 1. run


def finished(run: str | Path) -> bool:
    return (Path(run) / "policy" / "model.safetensors").exists()


def train_run(cfg: PolicyRedConfig) -> None:
    """Train (or resume) the RED run with the benchmark's settings."""
    from red_core.train import train

    make_runs_dir(Path(cfg.run_dir).parent)
    print(f"training {cfg.run_dir} (RED, seed {cfg.seed})")
    train(run_config("red", cfg.seed, cfg.run_dir, progress=cfg.progress, **cfg.models))


# ----------------------------------------------------------------------------- 2. evaluate


def evaluate(after: str | Path, rm, prompts: list[str], max_new_tokens: int, *, base: str | None = None,
             eval_samples: int = 8) -> dict:
    """`after` against the base policy on every prompt, `eval_samples` samples each, same seeds for both:
    mean RM reward, gold reward (red_core.gold, as training logs it), KL to the base, win rate."""
    from red_core import policies as compare
    from red_core.gold import gold_scores

    base = base or str(DEFAULT_POLICY)
    cmps = []
    for i in range(0, len(prompts), compare.MAX_PROMPTS):
        cmp = compare.run_to_end(compare.compare_policies(
            compare.local_policies(), rm, before=base, after=str(after), prompts=prompts[i:i + compare.MAX_PROMPTS],
            n=eval_samples, max_new_tokens=max_new_tokens, seed=EVAL_SEED + i))
        if cmp is None:  # only a should_stop() ends it early, and none is given
            raise RuntimeError(f"the comparison of {base} and {after} ended without a result")
        cmps.append(cmp)
    b = np.concatenate([[v for v in c.before.scores if v is not None] for c in cmps])
    a = np.concatenate([[v for v in c.after.scores if v is not None] for c in cmps])
    kl = np.concatenate([[float(np.sum(lp - rl)) for lp, rl in zip(c.after.logp, c.after.ref_logp)] for c in cmps])
    wins = compare.win_rate([v for c in cmps for v in c.before.scores], [v for c in cmps for v in c.after.scores])
    samples = cmps[0].rows()[::eval_samples]  # a few: the first sample of each prompt of the first chunk
    gold = {side: np.concatenate([gold_scores(getattr(c, side).prompts, getattr(c, side).responses) for c in cmps])
            for side in ("before", "after")}  # (S,) each: the gold reward training logs, on the same texts
    return {"n": int(len(a)), "n_prompts": len(prompts), "per_prompt": eval_samples,
            "reward_before": float(b.mean()), "reward_before_std": float(b.std()),
            "reward_after": float(a.mean()), "reward_after_std": float(a.std()),
            "gold_before": float(gold["before"].mean()), "gold_before_std": float(gold["before"].std()),
            "gold_after": float(gold["after"].mean()), "gold_after_std": float(gold["after"].std()),
            "kl_to_base": float(kl.mean()), "win_rate": wins, "samples": samples}


# ----------------------------------------------------------------------------- 3. ship


def read_json(path: Path) -> dict:
    """A benchmark result; {} when the benchmark has not written it."""
    return json.loads(path.read_text()) if path.exists() else {}


def write_card(out: Path, evaluation: dict) -> None:
    """OUT/README.md from templates/card_policy_red.md; everything it shows is in `evaluation` (evaluation.json)."""
    from huggingface_hub import ModelCardData

    from red_core.recipes import cards

    card_data = ModelCardData(license="bsd-3-clause", library_name="transformers", pipeline_tag="text-generation",
                              tags=["policy", "rlhf", "ppo", "red", "offline-default"])
    cards.write_card(out, "policy_red", card_data, ev=evaluation["eval"]["red"], sparse=evaluation["eval"].get("sparse"),
                     report=evaluation["report"], timing=evaluation["timing"], ablation=evaluation.get("ablation", {}),
                     config=evaluation["config"], has_png=(out / "train_curves.png").exists(), nan=float("nan"))


def build(cfg: PolicyRedConfig) -> dict:
    """Train the run if needed, evaluate it (and the sparse run), write OUT; returns evaluation.json's content."""
    from red_core import load_reward_model
    from red_core.train import TrainConfig
    from red_core.train.config import read_prompts

    run, results = Path(cfg.run_dir), Path(cfg.results_dir)
    if not finished(run):
        train_run(cfg)
    run_cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    rm = load_reward_model(cfg.reward_model)
    prompts = read_prompts(None)
    evals = {}
    for label, folder in (("red", run), ("sparse", Path(cfg.sparse_run_dir))):
        if not finished(folder):
            print(f"no finished {label} run in {folder}: not compared")
            continue
        ev = evals[label] = evaluate(folder / "policy", rm, prompts, run_cfg.max_new_tokens, base=cfg.policy,
                                     eval_samples=cfg.eval_samples)
        print(f"{label} seed {cfg.seed} vs policy-base on {ev['n']} samples: reward {ev['reward_before']:+.3f} -> "
              f"{ev['reward_after']:+.3f}, KL {ev['kl_to_base']:.3f}, win rate {ev['win_rate']:.2f}")
    evaluation = {"eval": evals, "report": read_json(results / "train_report.json"),
                  "timing": read_json(results / "train_timing.json"), "config": run_cfg.to_dict(),
                  "ablation": read_json(results / "train_report_critic-policy.json")}
    ship(run, cfg.out_dir, evaluation, results / "train_curves.png", write_card)
    return evaluation


def ship(run: Path, out_dir: str | Path, evaluation: dict, figure: Path, card) -> Path:
    """OUT = the run's policy + metrics.csv + `figure` (when it exists) + evaluation.json + README.md (`card(folder,
    evaluation)` writes it), built beside OUT and swapped in whole."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run / "policy", tmp)
    if figure.exists():
        shutil.copy(figure, tmp / figure.name)
    shutil.copy(run / "metrics.csv", tmp / "metrics.csv")
    (tmp / "evaluation.json").write_text(json.dumps(evaluation, indent=1) + "\n")
    card(tmp, evaluation)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    print(f"wrote {out}")
    return out


def rewrite_card(out_dir: str | Path) -> dict:
    """Rewrite OUT/README.md from OUT/evaluation.json (no training, no evaluation)."""
    out = Path(out_dir)
    evaluation = json.loads((out / "evaluation.json").read_text())
    write_card(out, evaluation)
    return evaluation


def parse_args(argv: list[str] | None = None) -> PolicyRedConfig:
    parser = argparse.ArgumentParser(prog="python -m red_core.recipes.policy_red", description=__doc__.split("\n\n")[0])
    add_dataclass_args(parser, PolicyRedConfig, suppress_defaults=True)
    return PolicyRedConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_args(argv)
    if cfg.cards_only:
        res = rewrite_card(cfg.out_dir)
        print(f"rewrote the model card in {cfg.out_dir}")
        return res
    return build(cfg)


if __name__ == "__main__":
    main()
