"""Character offsets: display strings, word/sentence units, and moving rewards between tokenizers.

All functions work on offsets into the response text, which the encoder makes a partition of it
(every character belongs to exactly one token). Grouping and transfer keep sums exact:
- a unit's reward is the sum of its tokens' rewards; its prefix score is its last token's;
- `transfer_rewards` maps cumulative reward onto another tokenizer's token ends, so the rewards it
  gives still sum to the same total (differences between chained boundaries telescope).
"""

from __future__ import annotations

import re

import numpy as np

LEVELS = ("token", "word", "sentence")
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|\n+")


def display(text: str) -> str:
    """A token's text with invisible characters made visible (↵ newline, ⇥ tab, ␣ for all-space tokens)."""
    if text == "":
        return "∅"
    shown = text.replace("\r", "␍").replace("\n", "↵").replace("\t", "⇥")
    return shown.replace(" ", "␣") if shown.strip(" ") == "" else shown


def unit_spans(text: str, level: str) -> list[tuple[int, int]]:
    """Partition `text` into word or sentence units; each unit carries the whitespace before it."""
    if level == "word":
        ends = [m.end() for m in re.finditer(r"\S+", text)]
    elif level == "sentence":
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    else:
        raise ValueError(f"unknown level {level!r}; choose one of {LEVELS}")
    spans, start = [], 0
    for e in ends:
        if e > start and text[start:e].strip():  # whitespace alone leads into the next unit
            spans.append((start, e))
            start = e
    if start < len(text):
        if spans and text[start:].strip() == "":
            spans[-1] = (spans[-1][0], len(text))  # trailing whitespace joins the last unit
        else:
            spans.append((start, len(text)))
    return spans


def assign_units(offsets: list[tuple[int, int]], special: list[bool], text: str, level: str | int) -> list[int]:
    """Unit index of each token; units are contiguous runs of tokens.

    A token joins the unit holding its first non-space character (a whitespace-only token, the unit
    its whitespace leads into); zero-width tokens join the unit before them; special tokens each
    form their own unit. `level` may be an
    int k: chunks of k tokens.
    """
    if isinstance(level, int):
        if level < 1:
            raise ValueError("a chunk size must be at least 1 token")
        out, unit, count = [], -1, 0
        for sp in special:
            if sp or count % level == 0:
                unit += 1
                count = 0
            out.append(unit)
            count = 0 if sp else count + 1
        return out
    if level == "token":
        return list(range(len(offsets)))
    span_ends = np.array([e for _, e in unit_spans(text, level)])
    out, unit, current = [], -1, None  # current: index of the span the open unit belongs to
    for (s, e), sp in zip(offsets, special):
        piece = text[s:e]
        if sp:
            unit, current = unit + 1, None
        elif piece == "":
            unit = max(unit, 0)
        else:
            first = s + len(piece) - len(piece.lstrip()) if piece.strip() else s
            span = int(np.searchsorted(span_ends, first, side="right"))
            if span != current:
                unit, current = unit + 1, span
        out.append(unit)
    return out


def transfer_rewards(source_ends: list[int], source_rewards: np.ndarray, target_ends: list[int]) -> np.ndarray:
    """Rewards for another tokenisation of the same text, by character offsets.

    `source_ends[t]`: end character of source token t (non-decreasing); `target_ends[j]`: same for
    target tokens. Cumulative source reward C(c) = sum of rewards of source tokens ending at or
    before character c; target token j gets C(end_j) - C(end_{j-1}). Source reward after the last
    target end (e.g. an end-of-turn token) goes to the last target token, so the totals agree.
    Target tokens that contain no source boundary get 0.
    """
    cum = np.concatenate([[0.0], np.cumsum(source_rewards)])  # (S+1,)
    src = np.asarray(source_ends)
    at = [cum[int(np.searchsorted(src, e, side="right"))] for e in target_ends]  # C(end_j)
    out = np.diff(np.concatenate([[0.0], at]))  # (T,)
    if len(out):
        out[-1] += cum[-1] - (at[-1] if at else 0.0)
    # Reference loop: out[j] = C(end_j) - C(end_{j-1}); out[-1] += C(inf) - C(end_last)
    return out
