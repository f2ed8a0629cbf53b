"""Short side-by-side PPO runs (RED vs sparse) stepped together, for a live reward curve.

    for history, message in live_runs(policy, tokenizer, rm, prompts, steps=15):
        fig = live_figure(history)     # history: {"red": [metrics, ...], "sparse": [...]}

Both runs start from the same policy, use the same seed and settings and differ only in the credit
method. The caller hands in the models (the app takes them from its locked model cache); each run
trains its own copy of the policy, so the caller's model never changes. Nothing is written to disk.
"""

from __future__ import annotations

import copy
import tempfile

from red_core.train.config import TrainConfig
from red_core.train.ppo import PPOTrainer

COLOURS = {"red": "#2166ac", "sparse": "#b2182b", "uniform": "#4d9221", "abc": "#8c510a"}


def live_runs(policy, tokenizer, rm, prompts: list[str], *, steps: int = 15, seed: int = 0, batch_size: int = 8,
              max_new_tokens: int = 12, methods: tuple[str, ...] = ("red", "sparse"), **overrides):
    """Generator of (history, message) after every step of every method.

    policy, tokenizer: a causal LM and its tokenizer (copied per method, never changed);
    rm: a red_core RewardModel (read only); prompts: the prompts to sample from.
    """
    trainers = {}
    for m in methods:
        cfg = TrainConfig(method=m, steps=steps, batch_size=batch_size, minibatch_size=max(1, batch_size // 2),
                          max_new_tokens=max_new_tokens, seed=seed, progress=False, out=tempfile.gettempdir(),
                          **overrides)
        trainers[m] = PPOTrainer(cfg, policy=copy.deepcopy(policy).float(), tokenizer=tokenizer, rm=rm,
                                 prompts=list(prompts))
    history: dict[str, list[dict]] = {m: [] for m in methods}
    for step in range(steps):
        for m, trainer in trainers.items():
            history[m].append(trainer.step())
            last = history[m][-1]
            yield history, f"step {step + 1}/{steps} {m}: reward {last['reward_mean']:+.3f}, KL {last['kl']:.3f}"


def live_figure(history: dict):
    """Plotly: mean RM reward per step for each method (and KL on a second axis, dotted)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for m, rows in history.items():
        x = [r["step"] for r in rows]
        colour = COLOURS.get(m, None)
        fig.add_scatter(x=x, y=[r["reward_mean"] for r in rows], name=f"{m}: reward", mode="lines+markers",
                        line={"color": colour})
        fig.add_scatter(x=x, y=[r["kl"] for r in rows], name=f"{m}: KL", mode="lines", yaxis="y2",
                        line={"color": colour, "dash": "dot"})
    fig.update_layout(title="PPO from the same policy: mean RM reward per step (KL dotted, right axis)",
                      xaxis_title="step", yaxis_title="mean R(x, y)", height=380, plot_bgcolor="#fff",
                      yaxis2={"title": "KL to reference", "overlaying": "y", "side": "right", "showgrid": False},
                      legend={"orientation": "h", "y": -0.2}, margin={"l": 50, "r": 50, "t": 50, "b": 60})
    return fig
