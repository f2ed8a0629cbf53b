"""`python -m red_core train`: one flag per TrainConfig field, help text from the field.

    python -m red_core train --policy P --reward-model R --prompts FILE --method red --steps N --out DIR
    python -m red_core train --algo reinforce --kl-target 3     # REINFORCE++ (no critic), adaptive KL β

Without --policy / --reward-model / --prompts the offline defaults in assets/ are used. A run
whose OUT folder holds a checkpoint continues from it (--no-resume starts over). Faults of the run
folder (a full disk, an unwritable or damaged OUT, history a restart would overwrite) end with one
`error: ...` line saying what to do and exit status 2, never a traceback; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from red_core.options import add_dataclass_args
from red_core.train.config import TrainConfig


def add_train_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one --flag per TrainConfig field (defaults and help from the dataclass)."""
    parser.description = (parser.description or "") + "RED-PPO: train a causal-LM policy with PPO (or REINFORCE++, " \
        "--algo reinforce) on token-level rewards from a sequence reward model (see red_core/train/ppo.py for the " \
        "implementation choices)."
    add_dataclass_args(parser, TrainConfig)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def run_train(args: argparse.Namespace) -> int:
    """Train; print where everything went and the last step's numbers. 0 on success.

    Raises ValueError (the caller prints it and exits 2) for bad settings and run-folder faults; an
    OSError that escaped the run folder's checks becomes one too.
    """
    from red_core.train.ppo import train

    cfg = config_from_args(args)
    try:
        summary = train(cfg)
    except KeyboardInterrupt:
        print(f"interrupted; run the same command again to continue {cfg.out} from its last checkpoint",
              file=sys.stderr)
        return 130
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        raise ValueError(f"{err.strerror or err}{where}; check the paths and --out") from err
    final = summary["final"] or {}
    print(f"{summary['steps_done']}/{cfg.steps} steps, {cfg.algo}, method {cfg.method}; {summary['critic']}")
    if summary.get("resumed_from"):
        print(f"resumed from {summary['resumed_from']}")
    if final:
        beta = f" (β {final['kl_coef']:.4g}, target {cfg.kl_target})" if cfg.kl_target is not None else ""
        print(f"last step: reward {final['reward_mean']:+.4f} (std {final['reward_std']:.4f}), KL {final['kl']:.4f}"
              f"{beta}, {final['step_time']:.2f} s/step")
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"metrics: {cfg.out}/metrics.csv, {cfg.out}/metrics.jsonl; policy: {summary.get('policy', '(stopped early)')}")
    return 0


def main(argv=None) -> int:
    from red_core.models import RewardModelError

    parser = add_train_args(argparse.ArgumentParser(prog="python -m red_core.train"))
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except (RewardModelError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
