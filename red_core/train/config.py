"""TrainConfig: every setting of a RED-PPO (or RED-REINFORCE++) run, one field each, with its help text and checks.

The help text of each field is what `python -m red_core train --help` prints. Fields marked
"(paper)" take the value of Li et al. 2025 (RED); "(safe-rlhf)" the value of the code lineage the
paper builds on, not stated in the paper; "(ours)" a choice for the small offline default task.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from red_core.gold import GOLD_REWARDS
from red_core.methods import METHODS
from red_core.models import REPO_ROOT
from red_core.options import option

DEFAULT_PROMPTS = REPO_ROOT / "assets" / "prompts.txt"
CRITIC_INITS = ("auto", "reward", "policy")
ALGOS = ("ppo", "reinforce")  # ppo: critic + GAE; reinforce: REINFORCE++ (Hu 2025), whitened returns, no critic
AMP_MODES = ("no", "bf16", "fp16")
# Fields that may differ between a checkpoint and the run that resumes it. None changes what the run
# computes: `out` (a run folder may be moved), the budget and the bookkeeping; `threads`, `device` and
# `rm_batch_size` change only floating-point rounding (resume is bit-exact when they stay the same); `gold` is
# only logged, never trained on.
RESUMABLE_CHANGES = ("out", "steps", "save_every", "keep_checkpoints", "progress", "resume", "threads", "device",
                     "rm_batch_size", "gold")
PATH_FIELDS = ("policy", "reward_model", "prompts")  # equal when they name the same existing file or folder


_opt = option  # a dataclass field with a help text (shown by --help)


@dataclass
class TrainConfig:
    """Settings of one PPO run. `TrainConfig()` trains the offline default policy with RED."""

    # --- what to train, on what
    policy: str | None = _opt(None, "policy to train: hub id or folder of a causal LM (default: assets/models/policy-base)")
    reward_model: str | None = _opt(None, "reward model: hub id or folder (default: assets/models/reward)")
    prompts: str | None = _opt(None, "text file, one prompt per line (default: assets/prompts.txt)")
    out: str = _opt("runs/red-ppo", "output folder: metrics, checkpoints, final policy")
    label_index: int | None = _opt(None, "which output of the reward model is the reward (needed if it has several)")
    # --- credit (the only phase RED changes)
    method: str = _opt("red", f"credit method for the RM score: {', '.join(METHODS)}", choices=list(METHODS))
    beta_c: float = _opt(1.0, "red: weight of RED's dense reward vs the sparse one, Eq. 7 (paper: 1.0)")
    prompt_baseline: bool = _opt(True, "red: subtract R(x, ∅) from the first token (off = paper's 'w/o DI')")
    abc_beta: float = _opt(0.5, "abc: share of the score spread by attention (Chan et al.: 0.5-0.8)")
    kl_coef: float = _opt(0.05, "β of the per-token KL penalty β·(log π_old - log π_ref) (paper: 0.02; ours: 0.05); "
                          "the starting β when kl_target is set")
    kl_target: float | None = _opt(None, "target KL in nats per response (sum over tokens); β adapts towards it "
                                   "after each step (Ziegler et al. 2019); None = fixed kl_coef")
    kl_horizon: int = _opt(10000, "adaptive KL: horizon in rollouts; each step moves β by at most a factor "
                           "1 ± 0.2·batch_size/horizon (Ziegler et al.: 10000)")
    gold: str = _opt("none", "gold reward logged beside the RM reward, never trained on: 'vader' = VADER compound of "
                     "prompt + response, the labeller the default RM imitates (needs `vadersentiment`); 'none'",
                     choices=list(GOLD_REWARDS))
    # --- budget
    steps: int = _opt(60, "PPO steps (one rollout batch each)")
    batch_size: int = _opt(64, "rollouts (prompt, response) per step")
    minibatch_size: int = _opt(16, "rollouts per gradient step; must divide batch_size")
    ppo_epochs: int = _opt(2, "passes over each rollout batch (ours; the paper's '3 epochs' are passes over the prompt set)")
    max_new_tokens: int = _opt(16, "longest response, in policy tokens (generation stops earlier at EOS)")
    max_prompt_tokens: int = _opt(64, "prompts longer than this are cut from the left")
    temperature: float = _opt(1.0, "sampling temperature (log-probs use the same); top-k and top-p are off")
    # --- optimisation
    algo: str = _opt("ppo", "'ppo' (critic + GAE, as in the paper) or 'reinforce' (REINFORCE++, Hu 2025: no critic, "
                     "advantage = return-to-go of the token rewards, whitened over the batch)", choices=list(ALGOS))
    actor_lr: float = _opt(3e-4, "policy AdamW learning rate (paper, 7B models: 1e-5; ours, for a ~3M-parameter policy: 3e-4)")
    critic_lr: float = _opt(1e-4, "ppo: critic AdamW learning rate (paper, 7B models: 5e-6; ours: 1e-4)")
    gamma: float = _opt(1.0, "discount γ (safe-rlhf: 1; RED is exact shaping only for γ = 1)")
    lam: float = _opt(0.95, "ppo: GAE λ (safe-rlhf: 0.95)")
    clip: float = _opt(0.2, "PPO ratio clip ε (safe-rlhf: 0.2)")
    value_clip: float = _opt(0.2, "ppo critic: clip new values to old ± this (0 = no clipping)")
    max_grad_norm: float = _opt(1.0, "clip each model's gradient norm to this (0 = off)")
    whiten_advantages: bool = _opt(True, "normalise advantages (reinforce: the returns) to mean 0, std 1 over the batch's "
                                   "response tokens")
    critic_init: str = _opt("auto", "ppo critic start: 'reward' (a copy of the RM, its score head read at every "
                            "position), 'policy' (a copy of the policy's trunk + a fresh zero head), "
                            "'auto' (reward when the RM is causal and shares the policy's vocabulary)",
                            choices=CRITIC_INITS)
    # --- system
    seed: int = _opt(0, "seed: prompts, sampling and minibatch order of step s come from (seed, s)")
    device: str = _opt("auto", "'auto' (cuda when present), 'cpu', 'cuda', 'cuda:1', ...")
    amp: str = _opt("no", "mixed precision for forward/backward on GPU: no, bf16, fp16 (weights stay float32)",
                    choices=AMP_MODES)
    threads: int | None = _opt(None, "torch CPU threads (results are bit-exact only for the same count)")
    rm_batch_size: int = _opt(16, "reward-model scoring batch size")
    save_every: int = _opt(10, "write a checkpoint every N steps (and at the end)")
    keep_checkpoints: int = _opt(1, "checkpoints kept on disk: the newest one and the keep-1 before it by step")
    resume: bool = _opt(True, "continue from the newest complete checkpoint in OUT/checkpoints; a run folder with "
                        "metrics but no usable checkpoint is refused (--no-resume starts over and deletes them)")
    progress: bool = _opt(True, "show a progress bar with reward, KL and step time")

    def __post_init__(self):
        for name in ("policy", "reward_model", "prompts", "out"):  # paths are kept as strings (JSON, comparisons)
            if getattr(self, name) is not None:
                setattr(self, name, str(getattr(self, name)))
        if self.method not in METHODS:  # credit from prefix scores; attributions (ig, gxi, occlusion) are not rewards
            raise ValueError(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if self.critic_init not in CRITIC_INITS:
            raise ValueError(f"critic_init must be one of {CRITIC_INITS}, got {self.critic_init!r}")
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.kl_target is not None and not float(self.kl_target) > 0:
            raise ValueError(f"kl_target must be > 0 (nats per response), got {self.kl_target}; leave it unset for a "
                             "fixed kl_coef")
        if int(self.kl_horizon) < 1:
            raise ValueError(f"kl_horizon must be >= 1, got {self.kl_horizon}")
        if self.gold not in GOLD_REWARDS:
            raise ValueError(f"gold must be one of {GOLD_REWARDS}, got {self.gold!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        for name in ("steps", "batch_size", "minibatch_size", "ppo_epochs", "max_new_tokens", "max_prompt_tokens",
                     "rm_batch_size", "save_every", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.minibatch_size:
            raise ValueError(f"minibatch_size ({self.minibatch_size}) must divide batch_size ({self.batch_size})")
        for name in ("beta_c", "abc_beta", "gamma", "lam"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("actor_lr", "critic_lr", "temperature", "clip"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("kl_coef", "value_clip", "max_grad_norm", "seed"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.prompts is not None and not Path(self.prompts).is_file():
            raise ValueError(f"prompts file {self.prompts!r} not found; pass a text file with one prompt per line")

    # ------------------------------------------------------------------ helpers

    @property
    def method_params(self) -> dict:
        """Keyword parameters for red_core.methods.compute_rewards."""
        return {"beta_c": self.beta_c, "prompt_baseline": self.prompt_baseline, "beta": self.abc_beta}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {sorted(unknown)}")
        return cls(**d)

    def differences(self, other: TrainConfig | dict) -> dict:
        """{field: (other's value, this value)} for the fields that differ and would change a run's numbers.

        `other` may be a saved to_dict() (a checkpoint's settings, not checked again: its prompts file
        may be gone): fields it lacks take their defaults, fields this version lacks count as different.
        """
        a = self.to_dict()
        b = other.to_dict() if isinstance(other, TrainConfig) else {**_defaults(), **other}
        names = list(a) + [k for k in b if k not in a]
        return {k: (b.get(k), a.get(k)) for k in names
                if k not in RESUMABLE_CHANGES and not _same_setting(k, a.get(k), b.get(k))}


def _defaults() -> dict:
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _same_setting(name: str, a, b) -> bool:
    if a == b:
        return True
    if name in PATH_FIELDS and a is not None and b is not None and Path(a).exists() and Path(b).exists():
        return Path(a).resolve() == Path(b).resolve()  # "x", "./x" and "/abs/x" are one file
    return False


def read_prompts(path: str | Path | None) -> list[str]:
    """Prompts from a text file, one per line; blank lines skipped; `\\n` written in a line is a newline."""
    path = Path(path) if path is not None else DEFAULT_PROMPTS
    if not path.is_file():
        raise ValueError(f"prompts file {str(path)!r} not found; pass --prompts FILE (one prompt per line)")
    lines = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines()]
    prompts = [line.replace("\\n", "\n") for line in lines if line.strip()]
    if not prompts:
        raise ValueError(f"{path} holds no prompt; write one prompt per line")
    return prompts
