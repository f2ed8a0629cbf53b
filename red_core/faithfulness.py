"""Faithfulness of word credit: delete (or insert) the top-credited words and watch the reward move.

Here the intervention is an edit of the TEXT: the response is cut into words by
`align.unit_spans(response, "word")` (each word carries the whitespace before it, so the spans tile the
text), words are removed at their character spans, and every edited response is re-tokenised and scored by
the reward model like any other text (`score_texts`, one padded batch call for all variants).

    deletion_curve   order words by credit, highest first (ties: earlier word first); for k = 0..k_max the
                     variant is the response without its top-k words; drops[k] = R(x, y) - R(x, y minus top-k).
                     AOPC = mean of drops[1..k_max] (higher: the credit found the words the score rests on).
    insertion_curve  the mirror: start from the empty response and put the top-k words back, in their original
                     order and with their own whitespace; gains[k] = R(x, top-k words) - R(x, ∅).
                     AOPC = mean of gains[1..k_max] (higher is better too).
    random_baseline  the same curve for N seeded random orders, averaged: what an uninformed ranking gets.
    best_deletion    for short responses: the largest drop any k-subset of words gives (all combinations),
                     the upper bound of every deletion curve at that k.

The empty response (every word deleted, or k = 0 of the insertion curve) is scored as R(x, ∅), the input of
every token before the first response token, the baseline RED uses (so a chat template's tokens after the
response are not part of it). k is capped at the number of words.

Statistics over texts: `bootstrap_ci` (percentile bootstrap of the mean) and `paired_test` (sign-flip
permutation test on per-text differences of two methods, two-sided).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from red_core import align
from red_core.models import encode
from red_core.records import RewardModel
from red_core.result import TokenRewards
from red_core.scoring import _model_scores, default_max_batch_tokens, prefix_inputs

# ----------------------------------------------------------------------------- helpers


def word_spans(response: str) -> list[tuple[int, int]]:
    """The response's word units (character spans that tile it)."""
    return align.unit_spans(response, "word")


def word_credit(tr: TokenRewards) -> np.ndarray:
    """(W,) credit per word of `word_spans(tr.response)` from a result at any granularity.

    Special tokens (end-of-turn, EOS) are left out: they are not words and cannot be deleted. Credit moves
    onto words by character offsets (align.transfer_rewards), so a word-level result comes back unchanged.
    """
    keep = [i for i, s in enumerate(tr.special) if not s]
    ends = [tr.offsets[i][1] for i in keep]
    rewards = np.asarray(tr.rewards, dtype=float)[keep]
    return align.transfer_rewards(ends, rewards, [e for _, e in word_spans(tr.response)])


def delete_words(response: str, spans: Sequence[tuple[int, int]], drop: Sequence[int]) -> str:
    """The response with the words at indices `drop` cut out (the remaining spans, joined in order)."""
    gone = set(drop)
    return "".join(response[s:e] for i, (s, e) in enumerate(spans) if i not in gone)


def _as_credit(credit_units, response: str) -> np.ndarray:
    credit = word_credit(credit_units) if isinstance(credit_units, TokenRewards) else np.asarray(credit_units, float)
    n = len(word_spans(response))
    if credit.shape != (n,):
        raise ValueError(f"credit has shape {credit.shape} but the response has {n} words")
    return credit


def credit_order(credit: np.ndarray) -> list[int]:
    """Word indices, highest credit first; ties keep text order."""
    return [int(i) for i in np.argsort(-np.asarray(credit, float), kind="stable")]


def score_texts(rm: RewardModel, prompt: str, responses: Sequence[str], *,
                max_batch_tokens: int | None = None) -> np.ndarray:
    """R(x, y) for each response, re-tokenised, in padded batches; an empty (or all-space) response
    scores as R(x, ∅), the input of the tokens before the response (RED's baseline)."""
    inputs: list[tuple[list[int], list[int] | None]] = []
    empty_input = None
    for r in responses:
        if r.strip():
            enc = encode(rm, prompt, r)
            inputs.append((enc.ids, enc.token_type_ids))
        else:
            if empty_input is None:
                empty_input = prefix_inputs(encode(rm, prompt, "x"), positions=[])[0]
                if not empty_input[0]:
                    raise ValueError("the prompt has no tokens before the response, so R(x, ∅) is undefined")
            inputs.append(empty_input)
    if not inputs:
        return np.zeros(0)
    return _model_scores(rm, inputs, max_batch_tokens or default_max_batch_tokens(rm))


def aopc(drops: Sequence[float]) -> float:
    """Mean of drops[1..]: drops[0] is k = 0 (nothing changed)."""
    d = np.asarray(drops, float)
    return float(d[1:].mean()) if len(d) > 1 else 0.0


# ----------------------------------------------------------------------------- curves


def _curves(rm, prompt, response, orders: list[list[int]], k_max: int, insertion: bool):
    spans = word_spans(response)
    n = len(spans)
    ks = list(range(min(k_max, n) + 1))
    texts = []
    for order in orders:
        for k in ks:
            top = order[:k]
            texts.append(delete_words(response, spans, [i for i in range(n) if i not in set(top)]) if insertion
                         else delete_words(response, spans, top))
    ref = "" if insertion else response
    scores = score_texts(rm, prompt, [ref, *texts])
    return ks, texts, scores[0], scores[1:].reshape(len(orders), len(ks))


def deletion_curve(rm: RewardModel, prompt: str, response: str, credit_units, *, k_max: int = 5,
                   unit: str = "word") -> dict:
    """Delete the top-k credited words (k = 0..k_max) and score each variant.

    credit_units: (W,) credit per word of `word_spans(response)`, or a TokenRewards (see `word_credit`).
    Returns {"k", "texts", "scores", "drops", "aopc", "full", "order"}; drops[k] = R(x, y) - scores[k].
    """
    if unit != "word":
        raise ValueError("only unit='word' is supported")
    credit = _as_credit(credit_units, response)
    order = credit_order(credit)
    ks, texts, full, sc = _curves(rm, prompt, response, [order], k_max, insertion=False)
    drops = (full - sc[0]).tolist()
    return {"k": ks, "texts": texts, "scores": sc[0].tolist(), "drops": drops, "aopc": aopc(drops),
            "full": float(full), "order": order}


def insertion_curve(rm: RewardModel, prompt: str, response: str, credit_units, *, k_max: int = 5,
                    unit: str = "word") -> dict:
    """Start from the empty response (R(x, ∅)) and put back the top-k credited words, in text order.

    Returns {"k", "texts", "scores", "gains", "aopc", "empty", "order"}; gains[k] = scores[k] - R(x, ∅).
    """
    if unit != "word":
        raise ValueError("only unit='word' is supported")
    credit = _as_credit(credit_units, response)
    order = credit_order(credit)
    ks, texts, empty, sc = _curves(rm, prompt, response, [order], k_max, insertion=True)
    gains = (sc[0] - empty).tolist()
    return {"k": ks, "texts": texts, "scores": sc[0].tolist(), "gains": gains, "aopc": aopc(gains),
            "empty": float(empty), "order": order}


def random_baseline(rm: RewardModel, prompt: str, response: str, *, k_max: int = 5, n: int = 20,
                    seed: int = 0) -> dict:
    """Deletion drops averaged over `n` random word orders (numpy default_rng(seed)).

    Returns {"k", "drops" (mean over orders), "aopc", "aopc_per_order"}.
    """
    w = len(word_spans(response))
    rng = np.random.default_rng(seed)
    orders = [[int(i) for i in rng.permutation(w)] for _ in range(n)]
    ks, _, full, sc = _curves(rm, prompt, response, orders, k_max, insertion=False)
    drops = full - sc  # (n, K)
    per = drops[:, 1:].mean(1) if len(ks) > 1 else np.zeros(n)
    return {"k": ks, "drops": drops.mean(0).tolist(), "aopc": aopc(drops.mean(0)), "aopc_per_order": per.tolist()}


def best_deletion(rm: RewardModel, prompt: str, response: str, *, k_max: int = 5, max_words: int = 10) -> dict:
    """The largest drop any set of k words gives, for k = 0..k_max (every combination is scored).

    Refuses responses of more than `max_words` words (the number of variants grows as C(W, k)).
    Returns {"k", "drops", "aopc", "subsets"} (subsets[k]: the word indices of the best set).
    """
    spans = word_spans(response)
    w = len(spans)
    if w > max_words:
        raise ValueError(f"{w} words; best_deletion scores every subset, so it is limited to {max_words} words")
    ks = list(range(min(k_max, w) + 1))
    subsets = [list(c) for k in ks for c in itertools.combinations(range(w), k)]
    scores = score_texts(rm, prompt, [response] + [delete_words(response, spans, c) for c in subsets])
    full_drops = scores[0] - scores[1:]  # (len(subsets),)
    best, which = [], []
    for k in ks:
        idx = [j for j, c in enumerate(subsets) if len(c) == k]
        j = max(idx, key=lambda j: full_drops[j])
        best.append(float(full_drops[j]))
        which.append(subsets[j])
    best[0] = 0.0
    return {"k": ks, "drops": best, "aopc": aopc(best), "subsets": which}


# ----------------------------------------------------------------------------- statistics


def bootstrap_ci(values: Sequence[float], n: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean over texts."""
    v = np.asarray(values, float)
    if v.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n, v.size))].mean(1)  # (n,)
    a = (1 - level) / 2
    return (float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def paired_test(a: Sequence[float], b: Sequence[float], n: int = 10000, seed: int = 0) -> dict:
    """Two-sided sign-flip permutation test of mean(a - b) = 0 over paired per-text values.

    p = (1 + #{|mean(s * d)| >= |mean(d)|}) / (1 + n) with random signs s; identical inputs give p = 1.
    Returns {"mean_diff", "p", "n"}.
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.size == 0:
        return {"mean_diff": float("nan"), "p": float("nan"), "n": 0}
    obs = abs(d.mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n, d.size))
    null = np.abs((signs * d).mean(1))  # (n,)
    hits = int((null >= obs - 1e-12 * max(1.0, obs)).sum())
    return {"mean_diff": float(d.mean()), "p": float((1 + hits) / (1 + n)), "n": int(d.size)}
