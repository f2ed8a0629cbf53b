"""Credit methods: turn one sequence score into a reward per token. A plain dict, no registry.

Every method takes a `PrefixScores` (see scoring.py) and returns rewards of shape (T,), one per
scored token t = 0 .. T-1; the last one, t = T-1, is normally end-of-turn / EOS. (The paper numbers
the response y_0 .. y_T, so its 1[t = T] is our 1[t = T-1], and its T+1 tokens are our T.)

    red      r~_t = R(x, y_<=t) - R(x, y_<=t-1), R(x, y_<=-1) = R(x, ∅)             (paper Eq. 6)
             r^_t = beta_c * r~_t + (1 - beta_c) * R(x, y) * 1[t = T-1]             (paper Eq. 7)
             prompt_baseline=False is the paper's "w/o DI": R(x, y_<=-1) = 0.
    sparse   R(x, y) on the last token (what PPO normally sees).
    uniform  R(x, y) / T on every one of the T tokens (the paper's R / (T + 1)).
    abc      attention-based credit (Chan et al. 2024): w_t = last-layer attention of the pooled
             token, heads averaged, over response tokens, normalised to sum 1;
             r_t = beta * R * w_t + (1 - beta) * R * 1[t = T-1].

Methods that need the model itself (ig, gxi, occlusion) live in attribution.METHODS, a second plain
dict; `list_methods()`, `get_method`, `method_params` and `resolve_params` cover both, and
`api.token_rewards_batch` calls them with the model. `compute_rewards` (PrefixScores only) takes the
first dict's methods.
"""

from __future__ import annotations

import inspect

import numpy as np

from red_core import attribution
from red_core.scoring import PrefixScores


def red(ps: PrefixScores, *, beta_c: float = 1.0, prompt_baseline: bool = True) -> np.ndarray:
    """RED token rewards (Eq. 6), mixed with the sparse reward by beta_c (Eq. 7)."""
    start = (ps.baseline or 0.0) if prompt_baseline else 0.0
    previous = np.concatenate([[start], ps.prefix_scores[:-1]])  # (T,) R(x, y_<=t-1)
    dense = ps.prefix_scores - previous  # (T,)
    # Reference loop: for t in range(T): dense[t] = P[t] - (P[t-1] if t > 0 else start)
    return beta_c * dense + (1.0 - beta_c) * sparse(ps)


def sparse(ps: PrefixScores) -> np.ndarray:
    """All of R(x, y) on the last token."""
    out = np.zeros(len(ps.prefix_scores))
    out[-1] = ps.score
    return out


def uniform(ps: PrefixScores) -> np.ndarray:
    """R(x, y) spread evenly over every scored token."""
    n = len(ps.prefix_scores)
    return np.full(n, ps.score / n)


def abc(ps: PrefixScores, *, beta: float = 0.5) -> np.ndarray:
    """Attention-based credit: the RM's own attention from the pooled token decides the split."""
    if ps.attention is None:
        raise ValueError("abc needs attention weights; score with with_attention=True")
    w = np.clip(np.asarray(ps.attention, dtype=np.float64), 0.0, None)  # (T,)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    return beta * ps.score * w + (1.0 - beta) * sparse(ps)


METHODS = {"red": red, "sparse": sparse, "uniform": uniform, "abc": abc}
NEEDS_ATTENTION = {"abc"}
MODEL_METHODS = attribution.METHODS  # need the model, not only PrefixScores: ig, gxi, occlusion
DESCRIPTIONS = {
    "red": "RED: each token gets the change in the prefix score it caused (exact, telescoping). "
           "Cost: 1 forward (causal RMs) or T+1 forwards (encoders).",
    "sparse": "All of the score on the last token (ordinary RLHF). Cost: 1 forward.",
    "uniform": "The score spread evenly over the tokens. Cost: 1 forward.",
    "abc": "Attention-based credit: the score split by the RM's last-layer attention (mixed with sparse by beta). "
           "Cost: 1 forward with attention weights.",
    **attribution.DESCRIPTIONS,
}


def list_methods() -> list[str]:
    """Names accepted by `method=`: the prefix-score methods, then the model-based ones."""
    return list(METHODS) + list(MODEL_METHODS)


def needs_model(name: str) -> bool:
    """The method needs the model itself (attribution.METHODS), not only the prefix scores."""
    return name in MODEL_METHODS


def get_method(name: str):
    if name in METHODS:
        return METHODS[name]
    if name in MODEL_METHODS:
        return MODEL_METHODS[name]
    raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(list_methods())}")


def method_params(name: str) -> dict:
    """The keyword parameters a method takes, with their defaults."""
    sig = inspect.signature(get_method(name))
    return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}


def resolve_params(name: str, params: dict) -> dict:
    """Check a method name and its parameters; return the ones it takes, defaults filled in.

    Parameters another method would take (e.g. beta_c for sparse) are ignored, so one call site can
    pass every option; a name no method knows is an error.
    """
    own = method_params(name)
    known = set().union(*(method_params(m) for m in list_methods()))
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; methods take: {sorted(known)}")
    used = {k: v if params.get(k) is None else params[k] for k, v in own.items()}
    for k in ("beta_c", "beta"):
        if k in used and not 0.0 <= float(used[k]) <= 1.0:
            raise ValueError(f"{k} must be between 0 and 1, got {used[k]}")
    if "steps" in used:
        steps = used["steps"]
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        used["steps"] = int(steps)
    return used


def compute_rewards(name: str, ps: PrefixScores, **params) -> tuple[np.ndarray, dict]:
    """Rewards (T,) of method `name`, and the parameters actually used (defaults filled in)."""
    used = resolve_params(name, params)
    if needs_model(name):
        raise ValueError(f"method {name!r} needs the model, not only prefix scores; use red_core.token_rewards "
                         f"(prefix-score methods: {', '.join(METHODS)})")
    return get_method(name)(ps, **used), used
