"""TokenRewards: the per-token rewards of one response, with everything needed to check and show them.

The object checks its shapes on construction, can aggregate itself to words or sentences, and
exports to pandas, CSV, JSON (with a `from_json` round trip), a standalone HTML page and a PNG. Every export
carries what is needed to read it alone: prompt, model, method, parameters, granularity, R(x, y), R(x, ∅)
and the telescoping check (CSV: as repeated columns on every row; JSON: "check"; HTML: a header block).

The numbers a reader needs to trust it are kept side by side: `score` = R(x, y), `baseline` =
R(x, ∅) (the prompt-only score), and `check()` says whether the rewards sum to what the method
promises (for RED with the prompt baseline: score - baseline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from red_core import align

JSON_VERSION = 1
SUM_TOLERANCE = 1e-6  # relative, for check()
ATTRIBUTIONS = {  # methods whose credit is an attribution, not a split of the score: no telescoping check
    "ig": "an attribution: Σ equals F(x) − F(x′) only up to IG's completeness gap, not R(x, y) − R(x, ∅)",
    "gxi": "an attribution in gradient units: its sum is not a reward",
    "occlusion": "leave-one-out score changes: they need not add up to the score",
}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """'=HYPERLINK(...)' -> "'=HYPERLINK(...)": a text cell a spreadsheet shows as text, never runs."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell


@dataclass
class TokenRewards:
    prompt: str
    response: str
    texts: list[str]  # (T,) raw text of each token (a slice of response, or a special token's text)
    offsets: list[tuple[int, int]]  # (T,) [start, end) into response; response tokens tile the response
    token_ids: list[list[int]]  # (T,) model token ids of each unit ([id] at token level)
    special: list[bool]  # (T,) template/special token (end-of-turn, EOS)
    rewards: np.ndarray  # (T,) reward of each token under `method`
    prefix_scores: np.ndarray  # (T,) R(x, y_<=t), the RM score of the text cut after token t
    score: float  # R(x, y)
    baseline: float | None  # R(x, ∅), score of the prompt alone; None if the input has no prompt tokens
    method: str = "red"
    params: dict = field(default_factory=dict)
    model: str = ""
    granularity: str = "token"  # token, word, sentence, or "k=N" chunks
    warnings: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # scoring path, timings, ...

    def __post_init__(self):
        self.rewards = np.asarray(self.rewards, dtype=np.float64)
        self.prefix_scores = np.asarray(self.prefix_scores, dtype=np.float64)
        self.offsets = [(int(s), int(e)) for s, e in self.offsets]
        self.token_ids = [list(map(int, t)) if isinstance(t, (list, tuple)) else [int(t)] for t in self.token_ids]
        self.special = [bool(s) for s in self.special]
        n = len(self.texts)
        for name in ("offsets", "token_ids", "special", "rewards", "prefix_scores"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"TokenRewards.{name} has {len(getattr(self, name))} entries; texts has {n}")
        if self.rewards.ndim != 1 or self.prefix_scores.ndim != 1:
            raise ValueError("rewards and prefix_scores must be 1-D")
        for s, e in self.offsets:
            if not 0 <= s <= e <= len(self.response):
                raise ValueError(f"offset ({s}, {e}) is outside the response ({len(self.response)} characters)")

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def tokens(self) -> list[str]:
        """Display strings: the raw text with invisible characters made visible."""
        return [t if sp else align.display(t) for t, sp in zip(self.texts, self.special)]

    @property
    def total(self) -> float:
        return float(self.rewards.sum())

    def expected_total(self) -> float:
        """What the rewards should add up to: R(x, y) - R(x, ∅) for RED with the baseline, else R(x, y)."""
        p = self.params
        if self.method == "red" and p.get("prompt_baseline", True) and self.baseline is not None:
            beta_c = float(p.get("beta_c", 1.0))
            return beta_c * (self.score - self.baseline) + (1 - beta_c) * self.score
        return self.score

    def check(self) -> dict:
        """The telescoping check, as numbers a reader can verify.

        Attributions (ig, gxi, occlusion) do not split the score, so there is nothing to telescope: "ok" is
        None and "note" says why; for ig, "expected" is F(x) − F(x′) and "difference" its completeness gap."""
        total = self.total
        if self.method in ATTRIBUTIONS:
            f_x, f_base = self.meta.get("f_input"), self.meta.get("f_baseline")
            expected = None if f_x is None or f_base is None else float(f_x) - float(f_base)
            return {"score": self.score, "baseline": self.baseline, "sum": total, "expected": expected,
                    "difference": None if expected is None else total - expected, "ok": None,
                    "note": ATTRIBUTIONS[self.method]}
        expected = self.expected_total()
        ok = abs(total - expected) <= SUM_TOLERANCE * max(1.0, abs(expected))
        return {"score": self.score, "baseline": self.baseline, "sum": total, "expected": expected,
                "difference": total - expected, "ok": bool(ok)}

    # ------------------------------------------------------------------ grouping

    def aggregate(self, level: str | int) -> TokenRewards:
        """Merge tokens into words, sentences or chunks of k tokens; rewards sum, prefix scores chain."""
        if level == "token" or (self.granularity != "token" and level == self.granularity):
            return self
        if self.granularity != "token":
            raise ValueError(f"already aggregated to {self.granularity!r}; aggregate the token-level result")
        units = align.assign_units(self.offsets, self.special, self.response, level)
        n = max(units) + 1 if units else 0
        groups = [[i for i, u in enumerate(units) if u == k] for k in range(n)]
        offsets = [(self.offsets[g[0]][0], self.offsets[g[-1]][1]) for g in groups]
        texts = ["".join(self.texts[i] for i in g) if self.special[g[0]] else self.response[s:e]
                 for g, (s, e) in zip(groups, offsets)]
        return TokenRewards(
            prompt=self.prompt, response=self.response, texts=texts, offsets=offsets,
            token_ids=[[self.token_ids[i][0] for i in g] for g in groups],
            special=[all(self.special[i] for i in g) for g in groups],
            rewards=np.array([self.rewards[g].sum() for g in groups]),
            prefix_scores=np.array([self.prefix_scores[g[-1]] for g in groups]),
            score=self.score, baseline=self.baseline, method=self.method, params=dict(self.params),
            model=self.model, granularity=level if isinstance(level, str) else f"k={level}",
            warnings=list(self.warnings), meta=dict(self.meta))

    def on_words(self) -> TokenRewards:
        """The rewards moved onto the response's words by character offsets (align.transfer_rewards): every
        tokenizer's result lands on the same word units, so two reward models can be compared word by word.
        Sums are kept; prefix scores chain from the baseline (0 without the prompt baseline)."""
        spans = align.unit_spans(self.response, "word")
        rewards = align.transfer_rewards([e for _, e in self.offsets], self.rewards, [e for _, e in spans])  # (W,)
        start = self.baseline if self.baseline is not None and self.params.get("prompt_baseline", True) else 0.0
        return TokenRewards(prompt=self.prompt, response=self.response, texts=[self.response[s:e] for s, e in spans],
                            offsets=spans, token_ids=[[] for _ in spans], special=[False] * len(spans), rewards=rewards,
                            prefix_scores=start + np.cumsum(rewards), score=self.score, baseline=self.baseline,
                            method=self.method, params=dict(self.params), model=self.model, granularity="word",
                            warnings=list(self.warnings), meta=dict(self.meta))

    def same_tokens(self, other: TokenRewards) -> bool:
        """Both results cut the response into the same tokens (same spans, ids and special marks)."""
        return self.offsets == other.offsets and self.token_ids == other.token_ids and self.special == other.special

    def without_special(self) -> TokenRewards:
        """Only the response tokens (special tokens dropped; their rewards are then missing from the sum)."""
        keep = [i for i, s in enumerate(self.special) if not s]
        return self._select(keep)

    def _select(self, keep: list[int]) -> TokenRewards:
        d = self.to_dict()
        d["tokens"] = [d["tokens"][i] for i in keep]
        return TokenRewards.from_dict(d)

    # ------------------------------------------------------------------ exports

    def rows(self) -> list[dict]:
        """One dict per token: text, start, end, id, special, reward, prefix_score."""
        out = []
        for i in range(len(self)):
            ids = self.token_ids[i]
            row = {"text": self.texts[i], "start": self.offsets[i][0], "end": self.offsets[i][1]}
            row.update({"id": ids[0]} if self.granularity == "token" else {"ids": ids})
            row.update({"special": self.special[i], "reward": float(self.rewards[i]),
                        "prefix_score": float(self.prefix_scores[i])})
            out.append(row)
        return out

    def to_dict(self) -> dict:
        return {"version": JSON_VERSION, "method": self.method, "params": self.params, "model": self.model,
                "granularity": self.granularity, "score": self.score, "baseline": self.baseline,
                "sum": self.total, "check": self.check(), "prompt": self.prompt, "response": self.response,
                "tokens": self.rows(), "warnings": self.warnings, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> TokenRewards:
        """The inverse of to_dict; "sum" and "check" are recomputed from the data, not read."""
        missing = [k for k in ("prompt", "response", "tokens", "score", "baseline") if not isinstance(d, dict) or k not in d]
        if missing:
            raise ValueError(f"not a TokenRewards export: missing {missing}; pass what to_json()/to_dict() wrote")
        toks = d["tokens"]
        return cls(prompt=d["prompt"], response=d["response"], texts=[t["text"] for t in toks],
                   offsets=[(t["start"], t["end"]) for t in toks],
                   token_ids=[t["ids"] if "ids" in t else [t["id"]] for t in toks],
                   special=[t["special"] for t in toks],
                   rewards=np.asarray([t["reward"] for t in toks], dtype=np.float64),
                   prefix_scores=np.asarray([t["prefix_score"] for t in toks], dtype=np.float64),
                   score=d["score"], baseline=d["baseline"],
                   method=d.get("method", "red"), params=d.get("params", {}), model=d.get("model", ""),
                   granularity=d.get("granularity", "token"), warnings=d.get("warnings", []), meta=d.get("meta", {}))

    def to_json(self, path=None, **kw) -> str:
        text = json.dumps(self.to_dict(), ensure_ascii=False, **kw)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str) -> TokenRewards:
        text = text_or_path
        if not text_or_path.lstrip().startswith("{"):
            with open(text_or_path, encoding="utf-8") as f:
                text = f.read()
        return cls.from_dict(json.loads(text))

    def to_pandas(self):
        import pandas as pd

        df = pd.DataFrame(self.rows())
        df.insert(1, "token", self.tokens)
        return df

    CSV_RUN_COLUMNS = ("prompt", "model", "method", "params", "granularity", "score", "baseline", "check_sum",
                       "check_expected", "check_ok")

    def to_csv(self, path=None) -> str | None:
        """The token table as CSV, one row per unit, each row also carrying the run (tidy, repeated columns):
        prompt, model, method, params (JSON), granularity, score = R(x, y), baseline = R(x, ∅), check_sum,
        check_expected, check_ok (empty for attributions, which promise no sum).

        Safe to open in a spreadsheet: text cells that a spreadsheet would run as a formula (starting with
        = + - @, tab or carriage return) get a leading apostrophe, as OWASP advises. The exact texts are in
        `to_json()`."""
        df = self.to_pandas()
        c = self.check()
        run = {"prompt": self.prompt, "model": self.model, "method": self.method,
               "params": json.dumps(self.params, ensure_ascii=False, sort_keys=True, default=str),
               "granularity": str(self.granularity), "score": self.score, "baseline": self.baseline,
               "check_sum": c["sum"], "check_expected": c["expected"], "check_ok": c["ok"]}
        for col in self.CSV_RUN_COLUMNS:
            df[col] = [run[col]] * len(df)
        for col in ("token", "text", "prompt", "model"):
            df[col] = df[col].map(spreadsheet_safe)
        return df.to_csv(path, index=False) if path is not None else df.to_csv(index=False)

    def to_html(self, *, scale: float | None = None, show_special: bool = True, title: str | None = None,
                full_page: bool = True) -> str:
        """A standalone page (viz.report_html: the run's header, heatmap, SVG plot of rewards and prefix scores,
        numbers table), or with full_page=False the heatmap fragment. Inline CSS, no scripts, every token escaped."""
        from red_core import viz

        if full_page:
            return viz.report_html(self, scale=scale, show_special=show_special, title=title)
        return viz.heatmap_html(self, scale=scale, show_special=show_special, title=title, full_page=False)

    def to_png(self, path=None, **kw) -> bytes:
        """The heatmap as a PNG for slides (viz.heatmap_png; keywords: scale, show_special, width_in, dpi)."""
        from red_core import viz

        return viz.heatmap_png(self, path, **kw)

    def _repr_html_(self) -> str:
        return self.to_html(full_page=False)

    def __repr__(self) -> str:
        base = "None" if self.baseline is None else f"{self.baseline:.4f}"
        return (f"TokenRewards(method={self.method!r}, {len(self)} {self.granularity}s, score={self.score:.4f}, "
                f"baseline={base}, sum={self.total:.4f})")

