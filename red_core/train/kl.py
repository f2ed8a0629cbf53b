"""The KL coefficient β of the reward r_t = credit_t − β·(log π_old − log π_ref): fixed, or adapted to a target.

Adaptive control (Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences", §2.2;
the same rule as TRL's AdaptiveKLController): after each step, with KL_s the step's mean sequence
KL (k1 estimate summed over a response's tokens, averaged over the batch) and n the rollouts it used,

    e_s   = clip(KL_s / KL_target − 1, −0.2, 0.2)
    β_s+1 = β_s · (1 + e_s · n / horizon)

so β grows while the policy drifts further than the target and shrinks while it stays closer. The
β used in step s is the value after step s−1's update (β_1 = the initial kl_coef). The trainer saves
`value` in each checkpoint, so a resumed run continues with the same β.
"""

from __future__ import annotations

CLIP = 0.2  # bound on the proportional error e (Ziegler et al.)


class FixedKL:
    """β stays at its initial value."""

    def __init__(self, value: float):
        self.value = float(value)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Nothing changes (same signature as AdaptiveKL.update)."""


class AdaptiveKL:
    """β moved towards a KL target: `update(current_kl, n_steps)` after each step (see the module doc)."""

    def __init__(self, init: float, target: float, horizon: int):
        if not target > 0:
            raise ValueError(f"the KL target must be > 0, got {target}")
        if not horizon >= 1:
            raise ValueError(f"the KL horizon must be >= 1, got {horizon}")
        self.value, self.target, self.horizon = float(init), float(target), int(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(float(current_kl) / self.target - 1.0, -CLIP), CLIP)  # e, clipped to [−0.2, 0.2]
        self.value *= 1.0 + error * n_steps / self.horizon


def kl_controller(init: float, target: float | None, horizon: int) -> FixedKL | AdaptiveKL:
    """FixedKL(init) when target is None, else AdaptiveKL(init, target, horizon)."""
    return FixedKL(init) if target is None else AdaptiveKL(init, target, horizon)
