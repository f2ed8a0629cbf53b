"""Gold reward: what the default reward model was trained to imitate, computed exactly.

The bundled reward model (assets/models/reward) is a small proxy trained by regression on VADER's
compound sentiment score of `prompt + response` (see red_core/recipes/defaults.py). VADER itself
is therefore a *gold* reward we can always compute: a policy that raises the proxy reward while
the gold reward falls is over-optimising the proxy (reward hacking). Training logs it beside the
RM reward (never trains on it), and evaluation uses this same function, so the two agree.

VADER is optional (PyPI `vadersentiment`, `pip install .[recipes]`); `gold_scores` raises an
ImportError that says so when it is missing.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

GOLD_REWARDS = ("none", "vader")


@lru_cache(maxsize=1)
def _labeller():
    from red_core.recipes.defaults import VaderLabeller  # the same labeller the default RM was trained on

    return VaderLabeller()


def gold_scores(prompts: list[str], responses: list[str], kind: str = "vader") -> np.ndarray:
    """(B,) gold reward of each (prompt, response): VADER compound of `prompt + response`, in [-1, 1]."""
    if kind not in GOLD_REWARDS or kind == "none":
        raise ValueError(f"unknown gold reward {kind!r}; choose 'vader'")
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    vader = _labeller()
    return np.array([vader.compound(p + r) for p, r in zip(prompts, responses)], dtype=np.float64)
