"""Policies side by side, for the app's Policies tab: before/after comparison and live RED vs sparse training.

Two jobs, both used by app/policies_tab.py (which only renders what this module returns):

1. Before / after: sample from two policies with the same seeds, score with one RM, compare.

    run = compare_policies(use_policy, rm, before="assets/models/policy-base",
                           after="assets/models/policy-red", prompts=["The movie was"], n=4)
    for event in run: ...          # Progress(...) events, then one Comparison at the end

   `use_policy(name)` is a context manager that yields (model, tokenizer) - the app passes its model
   cache; `local_policies()` loads on demand for scripts and tests. For every prompt and sample j:
   - both policies sample with the same torch seed (seed, prompt index), the same temperature, top-p
     and length limit, so the comparison uses common random numbers;
   - the RM scores each response (`red_core.token_rewards_batch`, RED token rewards for the heatmaps);
   - win rate of after over before: the share of pairs (prompt, j) where after's R(x, y) is higher
     (ties count one half);
   - KL of each policy to the reference: the mean over its own samples of
     Σ_t log π(y_t|s_t) − log π_ref(y_t|s_t) (the k1 estimate PPO penalises), 0 for the reference
     itself, None when the two tokenizers differ (log-probs of the same tokens are then undefined).

2. Train live: short PPO runs (RED vs sparse) stepped together, for a live reward curve.

    for history, message in live_runs(policy, tokenizer, rm, prompts, steps=15):
        fig = live_figure(history)     # history: {"red": [metrics, ...], "sparse": [...]}

   Both runs start from the same policy, use the same seed and settings and differ only in the
   credit method. The caller hands in the models (the app takes them from its locked model cache);
   each run trains its own copy of the policy, so the caller's model never changes. Nothing is
   written to disk.
"""


from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from red_core.gold import gold_scores
from red_core.models import REPO_ROOT, load_policy
from red_core.train.config import TrainConfig
from red_core.train.ppo import PPOTrainer, token_logprobs
from red_core.train.rewards import empty_response_scores, same_vocabulary

MAX_PROMPTS = 8  # prompts per comparison
MAX_SAMPLES_PER_PROMPT = 16  # samples per prompt and policy
MAX_NEW_TOKENS = 64  # longest response, in policy tokens
MAX_PROMPT_CHARS = 500  # characters in one prompt
DEFAULT_BEFORE = REPO_ROOT / "assets" / "models" / "policy-base"
DEFAULT_AFTER = REPO_ROOT / "assets" / "models" / "policy-red"


@dataclass
class SampleSet:
    """One policy's samples: S = prompts × n, in prompt-major order."""

    name: str  # hub id or folder of the policy
    prompts: list[str]  # (S,) the prompt of each sample
    prompt_index: list[int]  # (S,)
    responses: list[str]  # (S,) decoded response text (special tokens dropped)
    response_ids: list[list[int]]  # (S,) generated ids, EOS included when generated
    logp: list[np.ndarray]  # (S,) per-token log π(y_t|s_t) under the policy itself
    prompt_ids: list[list[int]] = field(default_factory=list)  # (S,)
    ref_logp: list[np.ndarray | None] = field(default_factory=list)  # (S,) log π_ref of the same tokens
    scores: list[float | None] = field(default_factory=list)  # (S,) R(x, y); None when it could not be scored
    token_rewards: list = field(default_factory=list)  # (S,) TokenRewards (RED) or the exception

    def kl(self) -> float | None:
        """Mean over samples of Σ_t (log π − log π_ref); None when the reference could not score them."""
        if not self.ref_logp or any(r is None for r in self.ref_logp):
            return None
        return float(np.mean([float(np.sum(a - r)) for a, r in zip(self.logp, self.ref_logp)]))


@dataclass
class Comparison:
    before: SampleSet
    after: SampleSet
    reference: str
    settings: dict

    def summary(self) -> dict:
        """Numbers for the table and for tests: means, win rate, KL to the reference."""
        out: dict[str, Any] = {"reference": self.reference, "settings": self.settings}
        for key, s in (("before", self.before), ("after", self.after)):
            scores = np.array([v for v in s.scores if v is not None], dtype=float)
            gold = gold_or_none(s.prompts, s.responses)  # (S,) VADER compound, or None without VADER
            out[key] = {"policy": s.name, "n": len(s.responses), "reward_mean": _f(scores.mean()) if len(scores) else None,
                        "reward_std": _f(scores.std()) if len(scores) else None, "kl_to_reference": s.kl(),
                        "gold_mean": _f(gold.mean()) if gold is not None and len(gold) else None,
                        "mean_tokens": _f(np.mean([len(r) for r in s.response_ids]))}
        out["win_rate_after"] = win_rate(self.before.scores, self.after.scores)
        return out

    def rows(self) -> list[dict]:
        """One row per (prompt, sample): both responses and both scores."""
        rows = []
        for i in range(len(self.before.responses)):
            rows.append({"prompt": self.before.prompts[i], "before": self.before.responses[i],
                         "before_score": self.before.scores[i], "after": self.after.responses[i],
                         "after_score": self.after.scores[i]})
        return rows


@dataclass
class Progress:
    fraction: float  # 0..1
    message: str


def gold_or_none(prompts: list[str], responses: list[str]) -> np.ndarray | None:
    """(S,) the gold reward of red_core.gold (VADER compound of prompt + response), or None when VADER is not
    installed. It is what the bundled reward model imitates: for another reward model it is only a sentiment score."""
    try:
        return gold_scores(prompts, responses)
    except ImportError:
        return None


def _f(x) -> float:
    return float(x)


def win_rate(before: list, after: list) -> float | None:
    """Share of pairs where after scores higher than before (ties: 1/2); pairs with a missing score skipped."""
    pairs = [(b, a) for b, a in zip(before, after) if b is not None and a is not None]
    if not pairs:
        return None
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for b, a in pairs]))


@contextmanager
def _loaded(cache: dict, name: str):
    if name not in cache:
        cache.clear()  # one policy in memory at a time
        cache[name] = load_policy(name)
    yield cache[name]


def local_policies() -> Callable[[str], AbstractContextManager]:
    """A `use_policy` for scripts and tests: loads with red_core.load_policy, keeps the last one."""
    cache: dict = {}
    return lambda name: _loaded(cache, name)


def check_request(prompts: list[str], n: int, max_new_tokens: int) -> list[str]:
    """Clean prompts and check the named limits; ValueError says which limit and what to do."""
    prompts = [p for p in (prompts or []) if p.strip()]
    if not prompts:
        raise ValueError("no prompt given: type at least one prompt (one per line) or pick an example")
    if len(prompts) > MAX_PROMPTS:
        raise ValueError(f"{len(prompts)} prompts; the limit is {MAX_PROMPTS} (MAX_PROMPTS). Remove some.")
    long = [p for p in prompts if len(p) > MAX_PROMPT_CHARS]
    if long:
        raise ValueError(f"a prompt has {len(long[0])} characters; the limit is {MAX_PROMPT_CHARS} (MAX_PROMPT_CHARS)")
    if not 1 <= int(n) <= MAX_SAMPLES_PER_PROMPT:
        raise ValueError(f"samples per prompt must be 1..{MAX_SAMPLES_PER_PROMPT} (MAX_SAMPLES_PER_PROMPT), got {n}")
    if not 1 <= int(max_new_tokens) <= MAX_NEW_TOKENS:
        raise ValueError(f"max new tokens must be 1..{MAX_NEW_TOKENS} (MAX_NEW_TOKENS), got {max_new_tokens}")
    return prompts


def _eos(model, tok) -> list[int]:
    eos = model.generation_config.eos_token_id if model.generation_config.eos_token_id is not None else tok.eos_token_id
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])] if eos is not None else []


@torch.no_grad()
def response_logprobs(model, prompt_ids: list[int], response_ids: list[int], temperature: float = 1.0) -> np.ndarray:
    """(T,) log π(y_t | x, y_<t) of the given tokens (one forward pass)."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(response_ids)], device=device)  # (1, P+T)
    logits = model(input_ids=ids).logits[:, len(prompt_ids) - 1:-1]  # (1, T, V)
    logp, _ = token_logprobs(logits, ids[:, len(prompt_ids):], temperature)  # (1, T)
    return logp[0].double().cpu().numpy()


@torch.no_grad()
def sample_prompt(model, tok, prompt: str, n: int, *, seed: int, max_new_tokens: int, temperature: float = 1.0,
                  top_p: float = 1.0) -> tuple[list[int], list[list[int]], list[np.ndarray]]:
    """n samples for one prompt: (prompt ids, response ids each, per-token log-probs each)."""
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    prompt_ids = tok(prompt).input_ids
    if not prompt_ids:
        raise ValueError(f"prompt {prompt!r} has no tokens for this policy's tokenizer")
    eos = _eos(model, tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (eos[0] if eos else 0)
    gen = GenerationConfig(do_sample=True, temperature=temperature, top_k=0, top_p=top_p, max_new_tokens=max_new_tokens,
                           pad_token_id=pad, eos_token_id=eos or None, bos_token_id=tok.bos_token_id)
    torch.manual_seed(seed)
    x = torch.tensor([prompt_ids] * n, device=device)  # (n, P): one prompt, no padding needed
    seq = model.generate(input_ids=x, attention_mask=torch.ones_like(x), generation_config=gen)[:, len(prompt_ids):]
    responses = []
    for row in seq.tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        responses.append(row[:cut])
    logps = [response_logprobs(model, prompt_ids, r, temperature) if r else np.zeros(0) for r in responses]
    return prompt_ids, responses, logps


def compare_policies(use_policy, rm, *, before: str, after: str, prompts: list[str], n: int = 4,
                     reference: str | None = None, max_new_tokens: int = 24, temperature: float = 1.0,
                     top_p: float = 1.0, seed: int = 0, should_stop=None):
    """Generator: Progress events while sampling and scoring, then the Comparison.

    `rm` is a RewardModel, or a context manager factory `() -> RewardModel` (held only while scoring).
    `reference` (default: before) is the policy KL is measured against. `should_stop()` returning
    True ends the run after the current prompt (nothing is returned then).
    """
    prompts = check_request(prompts, n, max_new_tokens)
    reference = reference or before
    settings = {"n": int(n), "max_new_tokens": int(max_new_tokens), "temperature": float(temperature),
                "top_p": float(top_p), "seed": int(seed), "prompts": prompts}
    sets: dict[str, SampleSet | None] = {name: None for name in (before, after)}
    toks: dict = {}  # tokenizer of each policy sampled so far
    # Order: the reference last when it is one of the two, so its log-probs of the other's samples
    # are taken while it is loaded (one policy in memory at a time is enough).
    order = [m for m in (before, after) if m != reference] + ([reference] if reference in (before, after) else [])
    order = list(dict.fromkeys(order))
    total = len(order) * len(prompts) + 2
    done = 0
    for name in order:
        with use_policy(name) as (model, tok):
            s = SampleSet(name=name, prompts=[], prompt_index=[], responses=[], response_ids=[], logp=[])
            for i, prompt in enumerate(prompts):
                if should_stop is not None and should_stop():
                    return
                yield Progress(done / total, f"sampling {n} from {_short(name)}: prompt {i + 1}/{len(prompts)}")
                p_ids, r_ids, logps = sample_prompt(model, tok, prompt, n, seed=seed * 100_003 + i,
                                                    max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
                for r, lp in zip(r_ids, logps):
                    s.prompts.append(prompt)
                    s.prompt_index.append(i)
                    s.prompt_ids.append(p_ids)
                    s.response_ids.append(r)
                    s.logp.append(lp)
                    s.responses.append(tok.decode(r, skip_special_tokens=True))
                done += 1
            sets[name], toks[name] = s, tok
            if name == reference:
                s.ref_logp = list(s.logp)
                for other in sets.values():
                    if other is not None and other is not s:
                        other.ref_logp = _ref_logprobs(model, tok, toks[other.name], other, temperature)
    sampled: dict[str, SampleSet] = {}
    for policy_name, got in sets.items():
        if got is None:  # every policy in `order` was sampled above
            raise RuntimeError(f"no samples were drawn from {policy_name!r}")
        sampled[policy_name] = got
    if reference not in (before, after):
        with use_policy(reference) as (model, tok):
            yield Progress(done / total, f"log-probs under the reference {_short(reference)}")
            for s in sampled.values():
                s.ref_logp = _ref_logprobs(model, tok, toks[s.name], s, temperature)
    done += 1
    yield Progress(done / total, "scoring with the reward model")
    with (rm() if callable(rm) else _as_cm(rm)) as model:
        for s in sampled.values():
            s.token_rewards, s.scores = _score(model, s)
    yield Progress(1.0, "done")
    yield Comparison(before=sampled[before], after=sampled[after], reference=reference, settings=settings)


def _ref_logprobs(model, tok, sample_tok, s: SampleSet, temperature: float) -> list:
    """log π_ref of each sample's tokens; None for each when the tokenizers differ."""
    if not same_vocabulary(tok, sample_tok):
        return [None] * len(s.response_ids)
    return [response_logprobs(model, p, r, temperature) if r else np.zeros(0) for p, r in zip(s.prompt_ids, s.response_ids)]


def _score(rm, s: SampleSet) -> tuple[list, list]:
    """RED TokenRewards and R(x, y) of each sample. An empty response (EOS at once) has no token to
    show; its score is the RM's score of the prompt alone, R(x, ∅)."""
    from red_core.api import token_rewards_batch

    idx = [i for i, r in enumerate(s.responses) if r]
    scored = token_rewards_batch(rm, [s.prompts[i] for i in idx], [s.responses[i] for i in idx], "red",
                                 on_error="return") if idx else []
    trs: list = [ValueError("empty response: the policy ended at once")] * len(s.responses)
    scores: list = [None] * len(s.responses)
    for i, tr in zip(idx, scored):
        trs[i] = tr
        scores[i] = None if isinstance(tr, Exception) else float(tr.score)
    for i in set(range(len(s.responses))) - set(idx):
        scores[i] = float(empty_response_scores(rm, s.prompts[i]).score)
    return trs, scores


@contextmanager
def _as_cm(x):
    yield x


def run_to_end(events) -> Comparison | None:
    """Drain a compare_policies generator; the Comparison (None when stopped)."""
    result = None
    for ev in events:
        if isinstance(ev, Comparison):
            result = ev
    return result


# ----------------------------------------------------------------------------- pictures


def shared_scale(cmp: Comparison) -> float:
    from red_core.viz import symmetric_scale

    arrays = [tr.rewards for s in (cmp.before, cmp.after) for tr in s.token_rewards if not isinstance(tr, Exception)]
    return symmetric_scale(*arrays) if arrays else 1.0


def reward_figure(cmp: Comparison):
    """Plotly: the distribution of R(x, y) for each policy (box + every sample as a point)."""
    import plotly.graph_objects as go

    from red_core.viz import METHOD_COLOURS  # no red / blue: those mean lowered / raised reward

    fig = go.Figure()
    for label, s in (("before", cmp.before), ("after", cmp.after)):
        colour = METHOD_COLOURS[label]
        y = [v for v in s.scores if v is not None]
        fig.add_trace(go.Box(y=y, name=f"{label}<br>{_short(s.name)}", boxpoints="all", jitter=0.4, pointpos=0,
                             marker_color=colour, boxmean=True,
                             hovertemplate="R(x, y) = %{y:+.3f}<extra></extra>"))
    fig.update_layout(title="Reward distribution, R(x, y) per sample", yaxis_title="RM score R(x, y)",
                      height=360, margin={"l": 50, "r": 20, "t": 50, "b": 60}, showlegend=False, plot_bgcolor="#fff")
    return fig


def _short(name: str) -> str:
    from pathlib import Path

    try:
        return str(Path(name).resolve().relative_to(REPO_ROOT))
    except (ValueError, OSError):
        return name


# ----------------------------------------------------------------------------- train live


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

    from red_core.viz import METHOD_COLOURS

    fig = go.Figure()
    for m, rows in history.items():
        x = [r["step"] for r in rows]
        colour = METHOD_COLOURS.get(m)
        fig.add_scatter(x=x, y=[r["reward_mean"] for r in rows], name=f"{m}: reward", mode="lines+markers",
                        line={"color": colour})
        fig.add_scatter(x=x, y=[r["kl"] for r in rows], name=f"{m}: KL", mode="lines", yaxis="y2",
                        line={"color": colour, "dash": "dot"})
    fig.update_layout(title="PPO from the same policy: mean RM reward per step (KL dotted, right axis)",
                      xaxis_title="step", yaxis_title="mean R(x, y)", height=380, plot_bgcolor="#fff",
                      yaxis2={"title": "KL to reference", "overlaying": "y", "side": "right", "showgrid": False},
                      legend={"orientation": "h", "y": -0.2}, margin={"l": 50, "r": 50, "t": 50, "b": 60})
    return fig
