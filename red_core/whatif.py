"""What if the response were different? Edit a span, delete each unit in turn, or ask a policy for other tokens.

    counterfactual   replace response[start:end] (character offsets, as in TokenRewards.offsets) by another
                     text ("" deletes it), score the original and the edited response with `token_rewards`
                     (same method, parameters and granularity, one batched call) and line their units up
                     (difflib on the unit texts). delta = R(x, edited) - R(x, original); `most_changed(k)`
                     lists the units outside the edit whose credit moved most: what the edit did elsewhere.
    leave_one_out    for each unit u (word by default, or token, sentence, k-token chunk) the score change
                     from deleting it from the TEXT: change_u = R(x, y without u) - R(x, y). The units are
                     the response units of `token_rewards(..., granularity=...)` (special tokens such as
                     end-of-turn are not response text and are never deleted). Every variant is re-tokenised
                     and all of them are scored in padded batches by `faithfulness.score_texts`;
                     `leave_one_out_loop` is the reference (one `token_rewards` call per variant). A variant
                     with nothing left is the prompt alone, scored as R(x, ∅).
                     Note the sign: attribution's "occlusion" credit is R(x, y) - R(x, y without u) on token
                     ids; here it is the change a reader would see after deleting the unit.
    alternatives     the top-k next tokens a causal-LM policy proposes at character `start` of the response,
                     fed as the policies are fed everywhere (red_core.policies.sample_prompt, PPO): the
                     tokenizer's ids of the prompt (BOS included), then the ids of response[:start] without
                     special tokens. Probabilities are the policy's softmax over its whole vocabulary (not
                     renormalised); special tokens and ids that decode to nothing readable (a lone byte of a
                     multi-byte character) are skipped.
"""

from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass, field
from itertools import zip_longest

import numpy as np
import torch

from red_core import align
from red_core.api import token_rewards, token_rewards_batch
from red_core.faithfulness import score_texts
from red_core.models import encode
from red_core.records import RewardModel
from red_core.result import TokenRewards
from red_core.scoring import prefix_inputs

# ----------------------------------------------------------------------------- checks


def _check_text(name: str, value) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}; pass the text itself")


def _check_position(name: str, value, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int character offset, got {value!r}")
    if not 0 <= int(value) <= upper:
        raise ValueError(f"{name}={value} is outside the response (0..{upper} characters); "
                         f"use the character offsets of TokenRewards.offsets")
    return int(value)


def _overlaps(span: tuple[int, int], lo: int, hi: int) -> bool:
    """Unit span touches the edited range [lo, hi); an empty range (an insertion) touches the unit it falls inside."""
    s, e = span
    return s < lo < e if lo == hi else s < hi and e > lo


# ----------------------------------------------------------------------------- counterfactual


@dataclass
class Counterfactual:
    original: TokenRewards
    edited: TokenRewards
    start: int  # [start, end) of the replaced characters in the original response
    end: int
    replacement: str
    edited_response: str
    delta: float  # R(x, edited) - R(x, original)
    rows: list[dict] = field(default_factory=list)  # aligned units (see `align_units`)

    def most_changed(self, k: int = 5) -> list[dict]:
        """The k rows outside the edited span with the largest |change|, largest first (ties: text order)."""
        outside = [r for r in self.rows if not r["inside"]]
        return sorted(outside, key=lambda r: -abs(r["change"]))[:max(0, int(k))]

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "replacement": self.replacement,
                "edited_response": self.edited_response, "delta": float(self.delta),
                "original": self.original.to_dict(), "edited": self.edited.to_dict(),
                "rows": [dict(r) for r in self.rows]}


def align_units(a: TokenRewards, b: TokenRewards, span_a: tuple[int, int] = (0, 0),
                span_b: tuple[int, int] = (0, 0)) -> list[dict]:
    """Units of two results lined up by difflib on their texts.

    Each row: op ("equal", "replace", "insert": only in b, "delete": only in a), index_a, index_b (None where
    absent), text_a, text_b, reward_a, reward_b, change = reward_b - reward_a (a missing side counts 0), and
    inside: the unit touches the edited character range (span_a in a's response, span_b in b's)."""
    rows = []
    matcher = difflib.SequenceMatcher(None, a.texts, b.texts, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        for i, j in zip_longest(range(i1, i2), range(j1, j2)):
            kind = op if op == "equal" or (i is not None and j is not None) else "insert" if i is None else "delete"
            ra = None if i is None else float(a.rewards[i])
            rb = None if j is None else float(b.rewards[j])
            inside = ((i is not None and not a.special[i] and _overlaps(a.offsets[i], *span_a)) or
                      (j is not None and not b.special[j] and _overlaps(b.offsets[j], *span_b)))
            rows.append({"op": kind, "index_a": i, "index_b": j,
                         "text_a": None if i is None else a.texts[i], "text_b": None if j is None else b.texts[j],
                         "reward_a": ra, "reward_b": rb, "change": (rb or 0.0) - (ra or 0.0), "inside": bool(inside)})
    return rows


def counterfactual(rm: RewardModel, prompt: str, response: str, start: int, end: int, replacement: str, *,
                   method: str = "red", granularity: str | int = "word", **params) -> Counterfactual:
    """Replace response[start:end] by `replacement` ("" deletes) and compare the rewards of both responses."""
    for name, value in (("prompt", prompt), ("response", response), ("replacement", replacement)):
        _check_text(name, value)
    start = _check_position("start", start, len(response))
    end = _check_position("end", end, len(response))
    if start > end:
        raise ValueError(f"start={start} is after end={end}; pass start <= end (the span response[start:end])")
    edited_response = response[:start] + replacement + response[end:]
    if not edited_response.strip():
        raise ValueError("the edited response is empty (or only whitespace): keep at least one word, "
                         "or type a replacement")
    original, edited = token_rewards_batch(rm, [prompt, prompt], [response, edited_response], method,
                                           granularity=granularity, **params)
    assert isinstance(original, TokenRewards) and isinstance(edited, TokenRewards)  # on_error="raise"
    rows = align_units(original, edited, (start, end), (start, start + len(replacement)))
    return Counterfactual(original=original, edited=edited, start=start, end=end, replacement=replacement,
                          edited_response=edited_response, delta=float(edited.score - original.score), rows=rows)


# ----------------------------------------------------------------------------- leave one out


@dataclass
class LeaveOneOut:
    prompt: str
    response: str
    granularity: str | int
    units: list[str]  # (U,) text of each deletable unit (response text; special tokens are not units)
    offsets: list[tuple[int, int]]  # (U,) [start, end) of each unit in the response; they tile it
    scores_without: np.ndarray  # (U,) R(x, y without unit u)
    changes: np.ndarray  # (U,) scores_without - score
    score: float  # R(x, y)
    model: str = ""
    notes: list[str] = field(default_factory=list)

    def variant(self, u: int) -> str:
        """The response without unit u (the text that was scored)."""
        s, e = self.offsets[u]
        return self.response[:s] + self.response[e:]

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "response": self.response, "granularity": self.granularity,
                "model": self.model, "score": float(self.score), "notes": list(self.notes),
                "units": [{"text": t, "start": s, "end": e, "score_without": float(w), "change": float(c)}
                          for t, (s, e), w, c in zip(self.units, self.offsets, self.scores_without, self.changes)]}


def unit_spans(rm: RewardModel, prompt: str, response: str, granularity: str | int = "word") -> list[tuple[int, int]]:
    """Character spans of the response units that `token_rewards(..., granularity=...)` gives (special tokens left out)."""
    return _spans(encode(rm, prompt, response), response, granularity)


def _spans(enc, response: str, granularity: str | int) -> list[tuple[int, int]]:
    if granularity not in align.LEVELS and not (isinstance(granularity, int) and not isinstance(granularity, bool)
                                               and granularity >= 1):
        raise ValueError(f"granularity must be one of {align.LEVELS} or a positive int, got {granularity!r}")
    units = align.assign_units(enc.offsets, enc.special, response, granularity)
    spans: dict[int, tuple[int, int]] = {}
    for (s, e), u, sp in zip(enc.offsets, units, enc.special):
        if not sp:
            spans[u] = (spans[u][0], e) if u in spans else (s, e)
    return list(spans.values())


NO_BASELINE = ("deleting the only unit leaves no tokens (no prompt, BOS or template), so R(x, ∅) is undefined; "
               "it is taken as 0, as RED does.")


def _loo(rm, prompt, response, granularity, scores: np.ndarray, spans, notes) -> LeaveOneOut:
    score = float(scores[0])
    without = np.asarray(scores[1:], dtype=np.float64)  # (U,)
    return LeaveOneOut(prompt=prompt, response=response, granularity=granularity,
                       units=[response[s:e] for s, e in spans], offsets=list(spans), scores_without=without,
                       changes=without - score, score=score, model=rm.name, notes=notes)


def leave_one_out(rm: RewardModel, prompt: str, response: str, *, granularity: str | int = "word",
                  batch_size: int = 8) -> LeaveOneOut:
    """R(x, y without u) - R(x, y) for every unit u; all variants re-tokenised and scored in one batched pass
    (at most `batch_size` texts per forward)."""
    _check_text("prompt", prompt)
    _check_text("response", response)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    enc = encode(rm, prompt, response)
    spans = _spans(enc, response, granularity)
    texts = [response] + [response[:s] + response[e:] for s, e in spans]
    max_batch_tokens = int(batch_size) * len(enc.ids)  # deletions make texts shorter: batch_size texts a batch
    has_baseline = bool(prefix_inputs(enc, positions=[])[0][0])  # the prompt-alone input has tokens
    filled = [k for k, t in enumerate(texts) if t.strip() or has_baseline]
    scores = np.zeros(len(texts))  # (1 + U,) R(x, y), then R(x, y without u) for each u
    scores[filled] = score_texts(rm, prompt, [texts[k] for k in filled], max_batch_tokens=max_batch_tokens)
    notes = [] if len(filled) == len(texts) else [NO_BASELINE]
    return _loo(rm, prompt, response, granularity, scores, spans, notes)


def leave_one_out_loop(rm: RewardModel, prompt: str, response: str, *,
                       granularity: str | int = "word") -> LeaveOneOut:
    """Reference for `leave_one_out`: one `token_rewards` call per variant (the prompt-alone variant: R(x, ∅))."""
    spans = unit_spans(rm, prompt, response, granularity)
    full = token_rewards(rm, prompt, response)
    empty = full.baseline if full.baseline is not None else 0.0
    variants = [response[:s] + response[e:] for s, e in spans]
    notes = [NO_BASELINE] if full.baseline is None and not all(v.strip() for v in variants) else []
    scores = [full.score]
    for variant in variants:
        scores.append(token_rewards(rm, prompt, variant).score if variant.strip() else empty)
    return _loo(rm, prompt, response, granularity, np.asarray(scores, dtype=np.float64), spans, notes)


# ----------------------------------------------------------------------------- alternatives


def _readable(tokenizer, token_id: int) -> str | None:
    text = tokenizer.decode([token_id])
    return None if not text or "\ufffd" in text else text


@torch.no_grad()
def next_token_probs(policy, tokenizer, prompt: str, response: str, start: int) -> torch.Tensor:
    """(V,) the policy's next-token probabilities after prompt + response[:start] (ids fed as in sampling)."""
    _check_text("prompt", prompt)
    _check_text("response", response)
    start = _check_position("start", start, len(response))
    prompt_ids = tokenizer(prompt).input_ids  # BOS (if the tokenizer adds one) + prompt, as policies.sample_prompt
    prefix_ids = tokenizer(response[:start], add_special_tokens=False).input_ids if start else []
    ids = list(prompt_ids) + list(prefix_ids)
    if not ids:
        raise ValueError("the prompt has no tokens for this policy's tokenizer and the response prefix is empty; "
                         "give a prompt, or pick a later position")
    device = next(policy.parameters()).device
    x = torch.tensor([ids], device=device)  # (1, L)
    logits = policy(input_ids=x, attention_mask=torch.ones_like(x)).logits[0, -1].float()  # (V,)
    return torch.softmax(logits, dim=-1).cpu()  # (V,)


def alternatives(policy, tokenizer, prompt: str, response: str, start: int, k: int = 5) -> list[tuple[str, float]]:
    """The k most likely next tokens (decoded text, probability) at character `start`, most likely first.

    Special tokens and tokens that decode to nothing readable are skipped; probabilities are not renormalised."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    probs = next_token_probs(policy, tokenizer, prompt, response, start)  # (V,)
    special = set(tokenizer.all_special_ids)
    out: list[tuple[str, float]] = []
    for token_id in torch.argsort(probs, descending=True, stable=True).tolist():  # (V,) most likely first
        if token_id in special or token_id >= len(tokenizer):
            continue
        text = _readable(tokenizer, token_id)
        if text is not None:
            out.append((text, float(probs[token_id])))
        if len(out) == k:
            break
    return out
