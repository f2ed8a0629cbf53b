"""Corpus statistics: what a reward model rewards across many scored responses.

`build_report(rows)` reads scored rows once (a generator is fine) and returns a JSON-ready dict;
`write_report(report, out_dir)` writes `report.json` (strict JSON: null, never NaN) and a self-contained,
offline `report.html` (plotly.js inlined once; every word, token and id escaped: the data is untrusted).
`CorpusStats` is the accumulator behind `build_report`, for callers that feed rows as they come (`add(row)`,
then `report()`).

A row is a dict with the scan's schema: row, line, id, pair_id, side ("response" | "chosen" | "rejected"),
prompt, response, method, granularity, score, baseline, tokens (unit texts), starts, ends (character
offsets into response), special, rewards, prefix_scores, error, and optionally model.
`rows_from_token_rewards` builds such rows from `TokenRewards`.

Decisions (also in the report's `options` and the HTML):
- Rows with an `error` are counted and skipped; rows whose fields are inconsistent (list lengths differ,
  offsets outside the response, non-finite rewards) are counted as `invalid` and skipped, with a reason.
- Words are `align.unit_spans(response, "word")`, and the credit of the row's non-special units is moved onto
  them by character offsets with `align.transfer_rewards`, as `TokenRewards.on_words` does. One difference:
  special tokens (end-of-turn, EOS; zero-width at the end) are not folded into the last word, as `on_words`
  does, but go to one "(special)" bucket, so they do not inflate the last word of every response. Words
  after the scored text (a response cut at the model's maximum length) are left out. Per row,
  word credits + special credit = the sum of the row's rewards (telescoping kept).
- A word's key is case-folded, with whitespace and the punctuation around it stripped ("Great!" -> "great");
  its credit still includes that punctuation's tokens. A word of punctuation only keeps its text ("...").
  `strip_punctuation=False` keys words by their case-folded text alone.
- Tokens are the row's units as they are (at the row's granularity), special tokens included and marked.
- Tables: the `top` highest and the `top` lowest means among entries with count >= `min_count` (they overlap
  when fewer than 2·top are eligible; figures show each entry once); ties go to the larger count.
- `unit` ("word" or "token") picks the unit of the position, length-plot and pair-separation sections;
  the length correlations are given for both.
- Means are per occurrence; std is the sample std (ddof=1); the 95% interval is the normal approximation
  mean ± 1.96·std/√n (null when n < 2). A difference of means (chosen − rejected) gets the Welch-style normal
  interval diff ± 1.96·√(s1²/n1 + s2²/n2).
- Position: unit j of n non-special units (words or tokens, `unit=`) is in decile floor(10·j/n) and in one of
  the index buckets 0-4, 5-9, 10-19, 20-49, 50-99, 100+.
- Score vs length keeps one (length, score) point per scored row; past `max_points` (default 1e6) rows a
  seeded reservoir sample of `max_points` is kept and the report says so. Pearson on the values, Spearman as
  Pearson on average ranks. The same holds for pair margins.
- Pairs: rows with side chosen/rejected and the same pair_id; accuracy counts chosen > rejected as 1 and
  exact ties as 1/2. Only pairs whose two rows both have a score count; an unmatched row is held until its
  partner comes (memory grows with the number of open pairs; adjacent pair rows keep it small). Separating
  words compare all valid chosen rows with all valid rejected rows (rows whose partner failed included).
- Memory: per-word and per-token accumulators (vocabulary size), the point reservoirs, open pairs.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import random
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from red_core import align
from red_core.outfile import plain_json

REPORT_VERSION = 1
Z95 = 1.96
SPECIAL = "(special)"
ABS_BUCKETS = ((0, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, None))
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
HIST_BINS = 20
PLOT_POINTS = 2000  # points in the score-vs-length scatter
NEUTRAL = "#6b6b6b"  # plot marks that are not a reward direction (red / blue mean lowered / raised the reward)
ERROR_EXAMPLES = 5


@dataclass(frozen=True)
class ReportOptions:
    unit: str = "word"  # unit of the position, length and pair-separation sections: "word" or "token"
    min_count: int = 5  # occurrences a word/token needs to enter a table (on both sides, for pairs)
    examples: int = 3  # example row ids (pair ids, for pairs) kept per table row
    top: int = 20  # rows in each highest / lowest table
    strip_punctuation: bool = True  # word keys without the punctuation around them
    max_points: int = 1_000_000  # reservoir size for (length, score) points and pair margins
    seed: int = 0  # reservoir and scatter sampling

    def __post_init__(self):
        if self.unit not in ("word", "token"):
            raise ValueError(f"unit must be 'word' or 'token', got {self.unit!r}")
        for name, low in (("min_count", 1), ("examples", 0), ("top", 1), ("max_points", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


# ----------------------------------------------------------------------------- small accumulators


class _Stat:
    """Count, mean and sum of squared deviations (Welford), plus the first few distinct example ids."""

    __slots__ = ("n", "mean", "m2", "ids")

    def __init__(self):
        self.n, self.mean, self.m2, self.ids = 0, 0.0, 0.0, []

    def add(self, x: float, example: Any, keep: int) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)
        if example is not None and len(self.ids) < keep and example not in self.ids:
            self.ids.append(example)

    def merge(self, n: int, mean: float, m2: float, example: Any, keep: int) -> None:
        """Add a group of n values with this mean and sum of squared deviations (Chan et al.)."""
        total = self.n + n
        d = mean - self.mean
        self.mean += d * n / total
        self.m2 += m2 + d * d * self.n * n / total
        self.n = total
        if example is not None and len(self.ids) < keep and example not in self.ids:
            self.ids.append(example)

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None

    def summary(self) -> dict:
        std = self.std
        half = Z95 * std / math.sqrt(self.n) if std is not None else None
        mean = self.mean if self.n else None
        return {"count": self.n, "mean": mean, "std": std,
                "ci_low": None if half is None else self.mean - half,
                "ci_high": None if half is None else self.mean + half, "examples": list(self.ids)}


def _stat(table: dict, key) -> _Stat:
    found = table.get(key)
    if found is None:
        found = table[key] = _Stat()
    return found


def _add_groups(stats: list[_Stat], groups: np.ndarray, values: np.ndarray, example: Any, keep: int) -> None:
    """Add values[i] to stats[groups[i]], one merge per group."""
    counts = np.bincount(groups, minlength=len(stats))
    sums = np.bincount(groups, weights=values, minlength=len(stats))
    means = np.divide(sums, counts, out=np.zeros(len(stats)), where=counts > 0)
    m2 = np.bincount(groups, weights=(values - means[groups]) ** 2, minlength=len(stats))
    for g in np.flatnonzero(counts):
        stats[g].merge(int(counts[g]), float(means[g]), float(m2[g]), example, keep)


class _Reservoir:
    """At most `size` items, a uniform sample of all items added (Algorithm R, seeded)."""

    def __init__(self, size: int, seed: int):
        self.size, self.seen = size, 0
        self.items: list = []
        self._rng = random.Random(seed)

    def add(self, item) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.items[j] = item


# ----------------------------------------------------------------------------- one row


def _missing(value) -> bool:
    """None, or the NaN a data frame puts in an empty cell."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _finite_score(row: dict) -> float | None:
    """The row's score as a float, or None when it is missing, NaN or infinite."""
    score = row.get("score")
    if score is None or _missing(score):
        return None
    value = float(score)
    return value if math.isfinite(value) else None


def check_row(row: dict) -> str | None:
    """Why a (non-error) row cannot be used, or None."""
    response = row.get("response")
    if not isinstance(response, str):
        return "response is not a string"
    fields = ("tokens", "starts", "ends", "special", "rewards")
    if any(row.get(f) is None for f in fields):
        return "missing one of " + ", ".join(fields)
    lengths = {f: len(row[f]) for f in fields}
    if len(set(lengths.values())) != 1:
        return f"lists of different lengths: {lengths}"
    if not np.all(np.isfinite(np.asarray(row["rewards"], dtype=np.float64))):
        return "non-finite reward"
    starts, ends = np.asarray(row["starts"], dtype=np.int64), np.asarray(row["ends"], dtype=np.int64)
    if len(starts) and not (np.all(starts >= 0) and np.all(starts <= ends) and np.all(ends <= len(response))):
        return "offsets outside the response"
    normal = ends[~np.asarray(row["special"], dtype=bool)]
    if np.any(np.diff(normal) < 0):
        return "unit ends out of order"
    return None


def word_credits(row: dict) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """The row's words (align.unit_spans) with the credit of its non-special units moved onto them by
    character offsets (align.transfer_rewards, as TokenRewards.on_words), and the rewards on no word (the
    special tokens'; every unit's for an empty response). Word credits + those = the row's rewards, summed."""
    rewards = np.asarray(row["rewards"], dtype=np.float64)
    special = np.asarray(row["special"], dtype=bool)
    src_ends = [int(e) for e, sp in zip(row["ends"], special) if not sp]
    covered = max(src_ends, default=0)
    spans = [(s, e) for s, e in align.unit_spans(row["response"], "word") if s < covered]
    if not spans:
        return [], np.zeros(0), rewards
    credit = align.transfer_rewards(src_ends, rewards[~special], [e for _, e in spans])  # (W,)
    return spans, credit, rewards[special]


@functools.lru_cache(maxsize=1 << 16)
def word_key(text: str, strip_punctuation: bool = True) -> str:
    """'  Great!' -> 'great'; a word of punctuation only keeps its (case-folded) text."""
    word = text.strip().casefold()
    if not strip_punctuation:
        return word
    lo, hi = 0, len(word)
    while lo < hi and unicodedata.category(word[lo]).startswith("P"):
        lo += 1
    while hi > lo and unicodedata.category(word[hi - 1]).startswith("P"):
        hi -= 1
    return word[lo:hi] or word


_BUCKET_ENDS = np.array([lo for lo, _ in ABS_BUCKETS[1:]]) - 1  # index j is in bucket searchsorted(ends, j)


def _bucket_label(b: int) -> str:
    lo, hi = ABS_BUCKETS[b]
    return f"{lo}+" if hi is None else f"{lo}-{hi}"


# ----------------------------------------------------------------------------- the accumulator


class CorpusStats:
    """Feed rows with `add(row)`; `report()` gives the dict `build_report` returns."""

    def __init__(self, options: ReportOptions | None = None):
        self.opt = options or ReportOptions()
        self.counts: Counter[str] = Counter()  # rows, scored, errors, invalid, words, tokens, special_tokens
        self.credit = {"tokens": 0.0, "words": 0.0, "special": 0.0}
        self.meta: dict[str, Counter] = {"method": Counter(), "granularity": Counter(), "model": Counter(), "side": Counter()}
        self.error_examples: list = []
        self.invalid_examples: list = []
        self.words: dict[str, _Stat] = {}
        self.special = _Stat()
        self.tokens: dict[tuple[str, bool], _Stat] = {}
        self.deciles = [_Stat() for _ in range(10)]
        self.buckets = [_Stat() for _ in ABS_BUCKETS]
        self.lengths = _Reservoir(self.opt.max_points, self.opt.seed)  # (words, tokens, score, id)
        self.margins = _Reservoir(self.opt.max_points, self.opt.seed + 1)  # (margin, pair_id)
        self.open_pairs: dict[Any, dict] = {}
        self.pair_counts: Counter[str] = Counter()  # wins, ties, losses, duplicates
        self.sides: dict[str, dict[Any, _Stat]] = {"chosen": {}, "rejected": {}}

    # -- feeding

    def add(self, row: dict) -> None:
        self.counts["rows"] += 1
        rid = row.get("id")
        if not _missing(row.get("error")) and row.get("error") != "":
            self.counts["errors"] += 1
            if len(self.error_examples) < ERROR_EXAMPLES:
                self.error_examples.append({"id": rid, "error": str(row["error"])})
            return
        reason = check_row(row)
        if reason is not None:
            self.counts["invalid"] += 1
            if len(self.invalid_examples) < ERROR_EXAMPLES:
                self.invalid_examples.append({"id": rid, "reason": reason})
            return
        for key in self.meta:
            if not _missing(row.get(key)):
                self.meta[key][str(row[key])] += 1
        spans, credit, off_words = word_credits(row)
        keys = [word_key(row["response"][s:e], self.opt.strip_punctuation) for s, e in spans]
        units = self._add_tokens(row, rid)
        self._add_words(keys, credit, off_words, rid)
        positional = list(zip(keys, credit)) if self.opt.unit == "word" else units
        self._add_positions([c for _, c in positional], rid)
        self._add_score(row, len(keys), len(units), rid)
        self._add_pair_side(row, positional)

    def _add_tokens(self, row: dict, rid) -> list[tuple[str, float]]:
        """Token table; returns the row's non-special units as (text, reward)."""
        units, k = [], self.opt.examples
        for text, sp, r in zip(row["tokens"], row["special"], row["rewards"]):
            sp, r = bool(sp), float(r)
            _stat(self.tokens, (str(text), sp)).add(r, rid, k)
            self.credit["tokens"] += r
            self.counts["special_tokens" if sp else "tokens"] += 1
            if not sp:
                units.append((str(text), r))
        return units

    def _add_words(self, keys: list[str], credit: np.ndarray, off_words: np.ndarray, rid) -> None:
        k = self.opt.examples
        for key, c in zip(keys, credit):
            _stat(self.words, key).add(float(c), rid, k)
        for r in off_words:
            self.special.add(float(r), rid, k)
        self.counts["words"] += len(keys)
        self.credit["words"] += float(credit.sum())
        self.credit["special"] += float(off_words.sum())

    def _add_positions(self, credits: list[float], rid) -> None:
        n = len(credits)
        if not n:
            return
        index, values = np.arange(n), np.asarray(credits, dtype=np.float64)
        _add_groups(self.deciles, 10 * index // n, values, rid, self.opt.examples)
        _add_groups(self.buckets, np.searchsorted(_BUCKET_ENDS, index), values, rid, self.opt.examples)

    def _add_score(self, row: dict, n_words: int, n_tokens: int, rid) -> None:
        score = _finite_score(row)
        if score is None:
            return
        self.counts["scored"] += 1
        self.lengths.add((n_words, n_tokens, score, rid))

    def _add_pair_side(self, row: dict, units: list[tuple[str, float]]) -> None:
        side, pid = row.get("side"), row.get("pair_id")
        if side not in ("chosen", "rejected"):
            return
        if _missing(pid):
            self.pair_counts["without_pair_id"] += 1
            return
        k = self.opt.examples
        for key, c in units:
            _stat(self.sides[side], key).add(float(c), pid, k)
        score = _finite_score(row)
        if score is None:
            return
        pending = self.open_pairs.setdefault(pid, {})
        if side in pending:
            self.pair_counts["duplicates"] += 1
            return
        pending[side] = score
        if len(pending) == 2:
            del self.open_pairs[pid]
            margin = pending["chosen"] - pending["rejected"]
            self.pair_counts["wins" if margin > 0 else "ties" if margin == 0 else "losses"] += 1
            self.margins.add((margin, pid))

    # -- reporting

    def report(self) -> dict:
        return {"version": REPORT_VERSION, "options": {**asdict(self.opt), **_METHODS_NOTE},
                "totals": self._totals(), "words": self._words_section(), "tokens": self._tokens_section(),
                "position": self._position_section(), "length": self._length_section(),
                "pairs": self._pairs_section()}

    def _totals(self) -> dict:
        c = self.counts
        single = {k: (next(iter(v)) if len(v) == 1 else None) for k, v in self.meta.items()}
        return {"rows": c["rows"], "scored": c["scored"], "errors": c["errors"], "invalid": c["invalid"],
                "used": c["rows"] - c["errors"] - c["invalid"], "words": c["words"], "tokens": c["tokens"],
                "special_tokens": c["special_tokens"], "method": single["method"],
                "granularity": single["granularity"], "model": single["model"],
                "methods": dict(self.meta["method"]), "granularities": dict(self.meta["granularity"]),
                "models": dict(self.meta["model"]), "sides": dict(self.meta["side"]), "credit": dict(self.credit),
                "error_examples": self.error_examples, "invalid_examples": self.invalid_examples}

    def _ranked(self, table: dict, label) -> dict:
        eligible = [(key, s) for key, s in table.items() if s.n >= self.opt.min_count]
        top = self.opt.top
        highest = sorted(eligible, key=lambda ks: (-ks[1].mean, -ks[1].n, str(ks[0])))[:top]
        lowest = sorted(eligible, key=lambda ks: (ks[1].mean, -ks[1].n, str(ks[0])))[:top]
        return {"vocabulary": len(table), "eligible": len(eligible),
                "highest": [{**label(key), **s.summary()} for key, s in highest],
                "lowest": [{**label(key), **s.summary()} for key, s in lowest]}

    def _words_section(self) -> dict:
        out = self._ranked(self.words, lambda key: {"word": key})
        return {**out, "special": {"word": SPECIAL, **self.special.summary()}}

    def _tokens_section(self) -> dict:
        return self._ranked(self.tokens, lambda key: {"token": key[0], "special": key[1]})

    def _position_section(self) -> dict:
        deciles = [{"decile": d, "range": f"{10 * d}-{10 * d + 10}%", **s.summary()} for d, s in enumerate(self.deciles)]
        buckets = [{"bucket": _bucket_label(b), **s.summary()} for b, s in enumerate(self.buckets)]
        return {"unit": self.opt.unit, "deciles": deciles, "buckets": buckets}

    def _length_section(self) -> dict:
        pts = self.lengths.items
        out: dict = {"unit": self.opt.unit, "rows": self.lengths.seen, "kept": len(pts),
                     "sampled": self.lengths.seen > len(pts)}
        for name, col in (("words", 0), ("tokens", 1)):
            x, y = [p[col] for p in pts], [p[2] for p in pts]
            out[name] = {"pearson": pearson(x, y), "spearman": spearman(x, y)}
        shown = pts if len(pts) <= PLOT_POINTS else random.Random(self.opt.seed).sample(pts, PLOT_POINTS)
        out["points"] = [{"id": p[3], "words": p[0], "tokens": p[1], "score": p[2]} for p in shown]
        return out

    def _pairs_section(self) -> dict:
        pc = self.pair_counts
        n = pc["wins"] + pc["ties"] + pc["losses"]
        margins = np.array([m for m, _ in self.margins.items], dtype=np.float64)
        return {"complete": n, "incomplete": len(self.open_pairs), "duplicates": pc["duplicates"],
                "without_pair_id": pc["without_pair_id"], "wins": pc["wins"], "ties": pc["ties"],
                "losses": pc["losses"], "accuracy": (pc["wins"] + 0.5 * pc["ties"]) / n if n else None,
                "margin": _distribution(margins, self.margins.seen), "separating": self._separating()}

    def _separating(self) -> dict:
        chosen, rejected, m, k = self.sides["chosen"], self.sides["rejected"], self.opt.min_count, self.opt.examples
        rows = []
        for key in chosen.keys() & rejected.keys():
            c, r = chosen[key], rejected[key]
            if c.n >= m and r.n >= m:
                rows.append(_difference(key, c, r, k, self.opt.unit))
        top, unit = self.opt.top, self.opt.unit
        chosen_higher = sorted(rows, key=lambda d: (-d["difference"], -d["chosen_count"] - d["rejected_count"], d[unit]))
        rejected_higher = sorted(rows, key=lambda d: (d["difference"], -d["chosen_count"] - d["rejected_count"], d[unit]))
        return {"unit": unit, "eligible": len(rows), "chosen_higher": chosen_higher[:top],
                "rejected_higher": rejected_higher[:top]}

_METHODS_NOTE = {"interval": "normal approximation: mean ± 1.96·std/√n, std with ddof=1 (null when n < 2)",
                 "spearman": "Pearson correlation of average ranks"}


def _difference(key, c: _Stat, r: _Stat, keep: int, unit: str) -> dict:
    diff = c.mean - r.mean
    cs, rs = c.std, r.std
    half = Z95 * math.sqrt(cs**2 / c.n + rs**2 / r.n) if cs is not None and rs is not None else None
    examples = list(dict.fromkeys(c.ids + r.ids))[:keep]
    return {unit: key, "difference": diff, "ci_low": None if half is None else diff - half,
            "ci_high": None if half is None else diff + half, "chosen_count": c.n, "chosen_mean": c.mean,
            "rejected_count": r.n, "rejected_mean": r.mean, "examples": examples}


def _distribution(values: np.ndarray, seen: int) -> dict:
    """Mean, std, quantiles and a histogram of `values` (a sample of `seen` values when sampled)."""
    out: dict = {"count": seen, "kept": len(values), "sampled": seen > len(values)}
    if not len(values):
        return {**out, "mean": None, "std": None, "quantiles": None, "histogram": None}
    counts, edges = np.histogram(values, bins=HIST_BINS)
    return {**out, "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else None,
            "quantiles": {f"{q:g}": float(np.quantile(values, q)) for q in QUANTILES},
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}


def pearson(x, y) -> float | None:
    """Pearson correlation; None with fewer than 2 points or a constant variable."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x, y) -> float | None:
    """Spearman correlation: Pearson correlation of average ranks (ties share their mean rank)."""
    import pandas as pd

    if len(x) < 2:
        return None
    return pearson(pd.Series(x, dtype=float).rank().to_numpy(), pd.Series(y, dtype=float).rank().to_numpy())


# ----------------------------------------------------------------------------- public entry points


def build_report(rows: Iterable[dict], *, unit: str = "word", min_count: int = 5, examples: int = 3, top: int = 20,
                 strip_punctuation: bool = True, max_points: int = 1_000_000, seed: int = 0) -> dict:
    """One pass over scored rows -> a JSON-ready report (see the module docstring for every choice)."""
    stats = CorpusStats(ReportOptions(unit=unit, min_count=min_count, examples=examples, top=top,
                                      strip_punctuation=strip_punctuation, max_points=max_points, seed=seed))
    for row in rows:
        stats.add(row)
    return stats.report()


def rows_from_token_rewards(trs, ids=None, pair_ids=None, sides=None) -> list[dict]:
    """Rows in the scan's schema from TokenRewards (an Exception in the list, as token_rewards_batch(...,
    on_error="return") gives, becomes an error row). ids default to "0", "1", ...; sides to "response"."""
    trs = list(trs)
    for name, values in (("ids", ids), ("pair_ids", pair_ids), ("sides", sides)):
        if values is not None and len(values) != len(trs):
            raise ValueError(f"{len(values)} {name} for {len(trs)} results; pass one per result")
    out = []
    for i, tr in enumerate(trs):
        row = {"row": i, "line": None, "id": str(i) if ids is None else ids[i],
               "pair_id": None if pair_ids is None else pair_ids[i], "side": "response" if sides is None else sides[i]}
        if isinstance(tr, BaseException):
            row.update(prompt="", response="", method=None, granularity=None, score=None, baseline=None, tokens=[],
                       starts=[], ends=[], special=[], rewards=[], prefix_scores=[], model=None,
                       error=f"{type(tr).__name__}: {tr}")
        else:
            row.update(prompt=tr.prompt, response=tr.response, method=tr.method, granularity=tr.granularity,
                       score=float(tr.score), baseline=None if tr.baseline is None else float(tr.baseline),
                       tokens=list(tr.texts), starts=[s for s, _ in tr.offsets], ends=[e for _, e in tr.offsets],
                       special=list(tr.special), rewards=tr.rewards.tolist(), prefix_scores=tr.prefix_scores.tolist(),
                       model=tr.model or None, error=None)
        out.append(row)
    return out


strict_json = plain_json  # NaN / inf -> None, numpy scalars -> numbers (red_core.outfile)


def write_report(report: dict, out_dir) -> tuple[str, str]:
    """Write `report.json` (strict JSON) and `report.html` (self-contained, offline) into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    json_path, html_path = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.html")
    text = json.dumps(strict_json(report), ensure_ascii=False, allow_nan=False, indent=1)
    # errors="backslashreplace": a lone surrogate in an id becomes a \udXXX escape, which JSON reads back
    with open(json_path, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(text)
    with open(html_path, "w", encoding="utf-8", errors="replace") as f:
        f.write(render_html(report))
    return json_path, html_path


# ----------------------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,sans-serif;color:#111;max-width:1100px;margin:20px auto;padding:0 12px}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
p.how{color:#333;font-size:14px;max-width:900px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f4f4f4} td.t{text-align:left}
code{white-space:pre;background:#f6f6f6;padding:0 3px;border-radius:3px}
.sp{font-size:11px;color:#555;border:1px dashed #999;padding:0 3px;margin-left:4px}
.pos{color:rgb(33,102,172)} .neg{color:rgb(178,24,43)}
"""

HOW = {
    "words": "Mean credit a word earned where it occurs, over every occurrence in the corpus (case-folded; "
             "punctuation around it stripped from the key but its credit included). Blue bars raised the reward, red "
             "lowered it. Bars carry a 95% interval (normal approximation); a word needs at least {min_count} "
             "occurrences. Credit after the response's text (end-of-turn, EOS) is the \"(special)\" bucket, not the "
             "last word's. Example ids name rows to open.",
    "tokens": "The same per unit as the rows carry them (the reward model's tokens at token granularity), text as "
              "is; special tokens are marked. Repeated strings with different roles (special or not) are separate.",
    "position": "Mean credit by where a {unit} stands in its response: relative position (deciles of unit "
                "index / number of units) and absolute index buckets. A rising curve means the model pays for "
                "what comes late (or for length); special tokens are left out.",
    "length": "Each point is a response: its length and its score R(x, y). Pearson measures a linear trend, "
              "Spearman a monotone one; a strong positive value suggests the model rewards length itself.",
    "pairs": "Pairs of chosen and rejected responses to the same prompt. Accuracy is the share of pairs where "
             "the chosen response scores higher (ties count half); the margin is score(chosen) − score(rejected). "
             "The tables list the {unit}s whose mean credit differs most between chosen and rejected responses "
             "(at least {min_count} occurrences on each side); examples are pair ids.",
}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _num(v, fmt: str = "+.4f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    cls = "pos" if v > 0 else "neg" if v < 0 else ""
    return f'<span class="{cls}">{v:{fmt}}</span>' if fmt.startswith("+") else f"{v:{fmt}}"


def _plain(v) -> str:
    return "n/a" if v is None else f"{v:+.4f}"


def _unit_html(text: str, special: bool = False) -> str:
    shown = text if special else align.display(text)
    return f"<code>{_e(shown)}</code>" + ('<span class="sp">special</span>' if special else "")


def _stat_cells(d: dict) -> list[str]:
    return [str(d["count"]), _num(d["mean"]), _num(d["std"], ".4f"),
            f'[{_num(d["ci_low"])}, {_num(d["ci_high"])}]', '<td class="t">' + _e(", ".join(map(str, d["examples"])))]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already escaped by the caller; a cell starting with <td is used as is."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(c + "</td>" if c.startswith("<td") else f"<td>{c}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure_html(fig, name: str, sink: dict | None = None) -> str:
    """The figure's div and script (no plotly.js: the page has it once); a fixed id keeps the page reproducible.
    With a `sink`, the figure goes there instead and no markup is returned (for callers that draw figures)."""
    if sink is not None:
        sink[name] = fig
        return ""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"red-corpus-{name}",
                       config={"displaylogo": False, "responsive": True})


def _bars(labels: list[str], values: list, lows: list, highs: list, title: str, ytitle: str, hover: list[str]):
    """Bars at integer positions 0..n-1 with the (escaped) labels as tick text: repeated strings never merge."""
    import plotly.graph_objects as go

    from red_core import viz

    scale = viz.symmetric_scale(np.array([v for v in values if v is not None]))
    x = list(range(len(values)))
    plus = [0.0 if h is None or v is None else h - v for v, h in zip(values, highs)]
    minus = [0.0 if lo is None or v is None else v - lo for v, lo in zip(values, lows)]
    fig = go.Figure(go.Bar(x=x, y=values, marker_color=[viz.color(v or 0.0, scale) for v in values],
                           marker_line_color="#555", marker_line_width=0.5,
                           error_y={"type": "data", "array": plus, "arrayminus": minus, "color": "#555"},
                           customdata=hover, hovertemplate="%{customdata}<extra></extra>"))
    fig.update_layout(title=title, height=380, margin={"l": 50, "r": 20, "t": 40, "b": 100}, plot_bgcolor="#fff",
                      xaxis={"tickmode": "array", "tickvals": x, "ticktext": labels, "tickangle": -60},
                      yaxis={"title": ytitle, "zeroline": True, "zerolinecolor": "#999"}, bargap=0.15)
    return fig


def _ranked_figure(section: dict, label, title: str, name: str, sink: dict | None = None):
    shown = section["highest"] + [d for d in reversed(section["lowest"]) if d not in section["highest"]]
    if not shown:
        return "<p>No entry reaches the minimum count.</p>"
    labels = [_e(label(d)) for d in shown]
    hover = [f"{lab}<br>mean {d['mean']:+.4f}, n = {d['count']}" for lab, d in zip(labels, shown)]
    return _figure_html(_bars(labels, [d["mean"] for d in shown], [d["ci_low"] for d in shown],
                              [d["ci_high"] for d in shown], title, "mean credit", hover), name, sink)


def _ranked_tables(section: dict, first: str, cell) -> str:
    headers = [first, "count", "mean", "std", "95% interval", "example ids"]
    parts = []
    for name in ("highest", "lowest"):
        parts.append(f"<h3>{name.capitalize()} mean credit</h3>")
        parts.append(_table(headers, [['<td class="t">' + cell(d)] + _stat_cells(d) for d in section[name]]))
    return "".join(parts)


def _section(title: str, how: str, *parts: str) -> str:
    return f"<h2>{_e(title)}</h2><p class='how'>{_e(how)}</p>" + "".join(parts)


def _totals_html(t: dict, opt: dict) -> str:
    rows = [["rows", str(t["rows"])], ["used", str(t["used"])], ["scored", str(t["scored"])],
            ["errors (skipped)", str(t["errors"])], ["invalid (skipped)", str(t["invalid"])],
            ["words", str(t["words"])], ["tokens (units)", str(t["tokens"])], ["special tokens", str(t["special_tokens"])],
            ["method", _e(t["method"] if t["method"] is not None else t["methods"])],
            ["granularity", _e(t["granularity"] if t["granularity"] is not None else t["granularities"])],
            ["model", _e(t["model"] if t["model"] is not None else (t["models"] or "n/a"))],
            ["credit on words / special / all units", " / ".join(_num(t["credit"][k]) for k in ("words", "special", "tokens"))]]
    out = _table(["", "value"], [['<td class="t">' + _e(a), b] for a, b in rows])
    bad = [f"{_e(d['id'])}: {_e(d.get('error', d.get('reason')))}" for d in t["error_examples"] + t["invalid_examples"]]
    if bad:
        out += "<p>Skipped rows (first few):</p><ul>" + "".join(f"<li>{b}</li>" for b in bad) + "</ul>"
    return out + f"<p class='how'>{_e(opt['interval'])}; Spearman: {_e(opt['spearman'])}.</p>"


def _words_html(rep: dict, sink: dict | None = None) -> str:
    w, opt = rep["words"], rep["options"]
    sp = w["special"]
    special = (f"<p>(special): {sp['count']} tokens, mean credit {_num(sp['mean'])}, 95% interval "
               f"[{_num(sp['ci_low'])}, {_num(sp['ci_high'])}].</p>")
    return _section("Words", HOW["words"].format(**opt),
                    f"<p>{w['vocabulary']} distinct words, {w['eligible']} with at least {opt['min_count']} occurrences.</p>",
                    _ranked_figure(w, lambda d: d["word"], "Highest and lowest mean credit per word", "words", sink),
                    special, _ranked_tables(w, "word", lambda d: f"<code>{_e(d['word'])}</code>"))


def _tokens_html(rep: dict, sink: dict | None = None) -> str:
    t, opt = rep["tokens"], rep["options"]
    label = lambda d: d["token"] + (" [special]" if d["special"] else "")  # noqa: E731
    return _section("Tokens", HOW["tokens"],
                    f"<p>{t['vocabulary']} distinct tokens, {t['eligible']} with at least {opt['min_count']} occurrences.</p>",
                    _ranked_figure(t, lambda d: align.display(label(d)), "Highest and lowest mean credit per token", "tokens", sink),
                    _ranked_tables(t, "token", lambda d: _unit_html(d["token"], d["special"])))


def _position_html(rep: dict, sink: dict | None = None) -> str:
    p = rep["position"]
    dec = p["deciles"]
    parts = []
    if any(d["count"] for d in dec):
        labels = [_e(d["range"]) for d in dec]
        vals = [d["mean"] for d in dec]  # None (no unit there) leaves a gap
        hover = [f"{lab}<br>mean {_plain(d['mean'])}, n = {d['count']}" for lab, d in zip(labels, dec)]
        parts.append(_figure_html(_bars(labels, vals, [d["ci_low"] for d in dec], [d["ci_high"] for d in dec],
                                        f"Mean credit per {p['unit']} by relative position", "mean credit", hover),
                                  "deciles", sink))
    headers = ["position", "count", "mean", "std", "95% interval", "example ids"]
    parts.append(_table(headers, [[_e(d["range"])] + _stat_cells(d) for d in dec]))
    parts.append(_table(["index"] + headers[1:], [[_e(d["bucket"])] + _stat_cells(d) for d in p["buckets"]]))
    return _section("Credit by position", HOW["position"].format(unit=p["unit"]), *parts)


def _length_html(rep: dict, sink: dict | None = None) -> str:
    import plotly.graph_objects as go

    ln = rep["length"]
    key = "words" if ln["unit"] == "word" else "tokens"
    parts = []
    if ln["points"]:
        pts = ln["points"]
        fig = go.Figure(go.Scatter(x=[p[key] for p in pts], y=[p["score"] for p in pts], mode="markers",
                                     marker={"size": 5, "color": NEUTRAL, "opacity": 0.6},
                                     customdata=[_e(p["id"]) for p in pts],
                                     hovertemplate="id %{customdata}<br>length %{x}<br>score %{y:+.4f}<extra></extra>"))
        fig.update_layout(title=f"Score against length ({len(pts)} of {ln['rows']} responses)", height=380,
                          xaxis={"title": f"length ({key})"}, yaxis={"title": "score R(x, y)"}, plot_bgcolor="#fff",
                          margin={"l": 50, "r": 20, "t": 40, "b": 50})
        parts.append(_figure_html(fig, "length", sink))
    rows = [[f"length in {k}", _num(ln[k]["pearson"]), _num(ln[k]["spearman"])] for k in ("words", "tokens")]
    parts.append(_table(["", "Pearson", "Spearman"], rows))
    if ln["sampled"]:
        parts.append(f"<p>Correlations on a uniform sample of {ln['kept']} of {ln['rows']} responses.</p>")
    return _section("Score and length", HOW["length"], *parts)


def _pairs_html(rep: dict, sink: dict | None = None) -> str:
    import plotly.graph_objects as go

    pr, opt = rep["pairs"], rep["options"]
    if not pr["complete"] and not pr["separating"]["eligible"]:
        return _section("Preference pairs", HOW["pairs"].format(unit=opt["unit"], min_count=opt["min_count"]),
                        "<p>No complete chosen/rejected pair in this corpus.</p>")
    m = pr["margin"]
    parts = [f"<p>{pr['complete']} complete pairs ({pr['incomplete']} incomplete, {pr['duplicates']} duplicate rows): "
             f"accuracy {_num(pr['accuracy'], '.3f')} ({pr['wins']} won, {pr['ties']} tied, {pr['losses']} lost); "
             f"mean margin {_num(m['mean'])}.</p>"]
    if m["histogram"]:
        h = m["histogram"]
        centers = [(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:])]
        widths = [b - a for a, b in zip(h["edges"][:-1], h["edges"][1:])]
        fig = go.Figure(go.Bar(x=centers, y=h["counts"], width=widths, marker_color=NEUTRAL,
                               marker_line_color="#555", marker_line_width=0.5))
        fig.add_vline(x=0, line_color="#111", line_dash="dot")
        fig.update_layout(title="Margin score(chosen) − score(rejected)", height=320, plot_bgcolor="#fff",
                          xaxis={"title": "margin"}, yaxis={"title": "pairs"}, margin={"l": 50, "r": 20, "t": 40, "b": 50})
        parts.append(_figure_html(fig, "margins", sink))
        parts.append(_table(["quantile"] + list(m["quantiles"]), [["margin"] + [_num(v) for v in m["quantiles"].values()]]))
    parts.append(_separating_html(pr["separating"], sink))
    return _section("Preference pairs", HOW["pairs"].format(unit=opt["unit"], min_count=opt["min_count"]), *parts)


def _separating_html(sep: dict, sink: dict | None = None) -> str:
    unit = sep["unit"]
    shown = sep["chosen_higher"] + [d for d in reversed(sep["rejected_higher"]) if d not in sep["chosen_higher"]]
    parts = [f"<h3>{_e(unit.capitalize())}s that separate chosen from rejected ({sep['eligible']} eligible)</h3>"]
    if shown:
        labels = [_e(align.display(d[unit]) if unit == "token" else d[unit]) for d in shown]
        hover = [f"{lab}<br>chosen − rejected {d['difference']:+.4f}" for lab, d in zip(labels, shown)]
        parts.append(_figure_html(_bars(labels, [d["difference"] for d in shown], [d["ci_low"] for d in shown],
                                        [d["ci_high"] for d in shown], "Mean credit on chosen minus on rejected",
                                        "difference of mean credit", hover), "separating", sink))
    headers = [unit, "chosen − rejected", "95% interval", "chosen n", "chosen mean", "rejected n", "rejected mean",
               "example pair ids"]
    for name in ("chosen_higher", "rejected_higher"):
        parts.append(f"<h4>{_e(name.replace('_', ' '))}</h4>")
        parts.append(_table(headers, [[f'<td class="t"><code>{_e(d[unit])}</code>', _num(d["difference"]),
                                       f'[{_num(d["ci_low"])}, {_num(d["ci_high"])}]', str(d["chosen_count"]),
                                       _num(d["chosen_mean"]), str(d["rejected_count"]), _num(d["rejected_mean"]),
                                       '<td class="t">' + _e(", ".join(map(str, d["examples"])))] for d in sep[name]]))
    return "".join(parts)


def render_html(report: dict) -> str:
    """The report as one self-contained page: plotly.js inlined once, every text from the data escaped."""
    from plotly.offline import get_plotlyjs

    report = strict_json(report)
    body = "".join([_totals_html(report["totals"], report["options"]), _words_html(report), _tokens_html(report),
                    _position_html(report), _length_html(report), _pairs_html(report)])
    return ("<!doctype html><html><head><meta charset='utf-8'><title>What this reward model rewards</title>"
            f"<style>{CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
            f"<body><h1>What this reward model rewards: corpus report</h1>{body}</body></html>")


def report_parts(report: dict) -> tuple[str, dict]:
    """For an app that draws figures itself: (every section as HTML with no script, {name: plotly Figure}).

    Figure names: words, tokens, deciles, length, margins, separating (those the data allows)."""
    report = strict_json(report)
    figures: dict = {}
    body = "".join([_totals_html(report["totals"], report["options"]), _words_html(report, figures),
                    _tokens_html(report, figures), _position_html(report, figures), _length_html(report, figures),
                    _pairs_html(report, figures)])
    return f"<style>{CSS}</style>{body}", figures
