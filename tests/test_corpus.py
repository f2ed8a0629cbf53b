"""red_core.corpus: report numbers against a small corpus computed by hand, skipped rows, options, the HTML's
safety (offline, escaped) and strict JSON, and rows from real TokenRewards (word credits keep the sum).

Tolerance: 1e-9 absolute for every number computed by hand (the report accumulates in float64).
"""

import html
import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest

import red_core
from red_core import corpus

TOL = 1e-9
HOSTILE = "<img src=x onerror=alert(1)>"


def make_row(rid, response, tokens, rewards, score, *, side="response", pair_id=None, special=None):
    """A row in the scan's schema; special tokens are zero-width at the end of the response."""
    special = special or [False] * len(tokens)
    starts, ends, pos = [], [], 0
    for text, sp in zip(tokens, special):
        if sp:
            starts.append(len(response))
            ends.append(len(response))
        else:
            starts.append(pos)
            pos += len(text)
            ends.append(pos)
    assert pos == len(response), "the non-special tokens must tile the response"
    return {"row": 0, "line": None, "id": rid, "pair_id": pair_id, "side": side, "prompt": "p", "response": response,
            "method": "red", "granularity": "token", "score": score, "baseline": 0.0, "tokens": tokens,
            "starts": starts, "ends": ends, "special": special, "rewards": rewards, "prefix_scores": [0.0] * len(tokens),
            "error": None}


def hand_rows():
    """Words and their credits (worked out in the comments):
    a (chosen p1, score 2):    good 1.0, film 0.75 ("film." = " film" 0.5 + "." 0.25)
    b (rejected p1, -0.5):     bad -1.0, film 0.25
    c (chosen p2, 1.0):        good 0.5, good 1.5, (special) 0.25
    d (rejected p2, 1.0):      film 0.0, bad -2.5 ("bad!" = -2.0 - 0.5)
    e: an error row;  f (response, 4.0): great 3.0
    """
    return [
        make_row("a", "Good film.", ["Good", " film", "."], [1.0, 0.5, 0.25], 2.0, side="chosen", pair_id="p1"),
        make_row("b", "Bad film", ["Bad", " film"], [-1.0, 0.25], -0.5, side="rejected", pair_id="p1"),
        make_row("c", "good good", ["good", " good", "</s>"], [0.5, 1.5, 0.25], 1.0, side="chosen", pair_id="p2",
                 special=[False, False, True]),
        make_row("d", "Film bad!", ["Film", " bad", "!"], [0.0, -2.0, -0.5], 1.0, side="rejected", pair_id="p2"),
        {"row": 4, "id": "e", "side": "response", "error": "RewardModelError: too long"},
        make_row("f", "Great", ["Great"], [3.0], 4.0),
    ]


def by_key(entries, key):
    return {d[key]: d for d in entries}


def test_words_totals_and_intervals_by_hand():
    rep = corpus.build_report(iter(hand_rows()), min_count=2)  # a generator: one pass
    t = rep["totals"]
    assert (t["rows"], t["errors"], t["invalid"], t["used"], t["scored"]) == (6, 1, 0, 5, 5)
    assert (t["words"], t["tokens"], t["special_tokens"]) == (9, 11, 1)
    assert (t["method"], t["granularity"], t["model"]) == ("red", "token", None)
    assert t["error_examples"] == [{"id": "e", "error": "RewardModelError: too long"}]
    assert t["credit"]["tokens"] == pytest.approx(3.75, abs=TOL)
    assert t["credit"]["words"] == pytest.approx(3.5, abs=TOL)
    assert t["credit"]["special"] == pytest.approx(0.25, abs=TOL)

    w = rep["words"]
    assert w["vocabulary"] == 4 and w["eligible"] == 3  # great (1 occurrence) is below min_count
    assert [d["word"] for d in w["highest"]] == ["good", "film", "bad"]
    assert [d["word"] for d in w["lowest"]] == ["bad", "film", "good"]
    hand = {"good": [1.0, 0.5, 1.5], "film": [0.75, 0.25, 0.0], "bad": [-1.0, -2.5]}
    got = by_key(w["highest"], "word")
    for word, values in hand.items():
        n, mean = len(values), sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        d = got[word]
        assert d["count"] == n
        assert d["mean"] == pytest.approx(mean, abs=TOL)
        assert d["std"] == pytest.approx(std, abs=TOL)
        assert d["ci_low"] == pytest.approx(mean - 1.96 * std / math.sqrt(n), abs=TOL)
        assert d["ci_high"] == pytest.approx(mean + 1.96 * std / math.sqrt(n), abs=TOL)
    assert got["good"]["std"] == pytest.approx(0.5, abs=TOL)
    assert got["good"]["examples"] == ["a", "c"]  # distinct ids, in order of appearance
    assert got["film"]["examples"] == ["a", "b", "d"]
    sp = w["special"]
    assert (sp["word"], sp["count"], sp["std"], sp["examples"]) == ("(special)", 1, None, ["c"])
    assert sp["mean"] == pytest.approx(0.25, abs=TOL)


def test_tokens_table_keeps_texts_and_marks_special():
    rep = corpus.build_report(hand_rows(), min_count=1, top=50)
    toks = {(d["token"], d["special"]): d for d in rep["tokens"]["highest"]}
    assert rep["tokens"]["vocabulary"] == 11
    assert toks[(" film", False)]["count"] == 2
    assert toks[(" film", False)]["mean"] == pytest.approx(0.375, abs=TOL)
    assert toks[("</s>", True)]["mean"] == pytest.approx(0.25, abs=TOL)
    assert ("Good", False) in toks and ("good", False) in toks  # tokens are not case-folded


def test_position_deciles_and_buckets_by_hand():
    pos = corpus.build_report(hand_rows(), min_count=1)["position"]
    dec = pos["deciles"]
    # two-word responses put word 0 in decile 0 and word 1 in decile 5; "Great" alone is in decile 0
    assert dec[0]["count"] == 5 and dec[0]["mean"] == pytest.approx((1.0 - 1.0 + 0.5 + 0.0 + 3.0) / 5, abs=TOL)
    assert dec[5]["count"] == 4 and dec[5]["mean"] == pytest.approx((0.75 + 0.25 + 1.5 - 2.5) / 4, abs=TOL)
    assert all(dec[i]["count"] == 0 and dec[i]["mean"] is None for i in (1, 2, 3, 4, 6, 7, 8, 9))
    buckets = by_key(pos["buckets"], "bucket")
    assert list(buckets) == ["0-4", "5-9", "10-19", "20-49", "50-99", "100+"]
    assert buckets["0-4"]["count"] == 9 and buckets["0-4"]["mean"] == pytest.approx(3.5 / 9, abs=TOL)
    tok = corpus.build_report(hand_rows(), unit="token")["position"]
    assert sum(d["count"] for d in tok["deciles"]) == 11  # non-special tokens only
    assert tok["deciles"][3]["count"] == 2  # token 1 of 3 (rows a, d)


def test_score_against_length_by_hand():
    ln = corpus.build_report(hand_rows())["length"]
    # (words, score): (2, 2), (2, -0.5), (2, 1), (2, 1), (1, 4) -> r = -2.5 / sqrt(0.8 * 11)
    assert ln["rows"] == 5 and not ln["sampled"]
    assert ln["words"]["pearson"] == pytest.approx(-2.5 / math.sqrt(8.8), abs=TOL)
    # ranks: x (3.5, 3.5, 3.5, 3.5, 1), y (4, 1, 2.5, 2.5, 5) -> rho = -7 / sqrt(9.8 * 9.5)
    assert ln["words"]["spearman"] == pytest.approx(-7 / math.sqrt(9.8 * 9.5), abs=TOL)
    x, y = [3, 2, 2, 3, 1], [2.0, -0.5, 1.0, 1.0, 4.0]  # token lengths
    assert ln["tokens"]["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=TOL)
    assert sorted(p["id"] for p in ln["points"]) == ["a", "b", "c", "d", "f"]
    sampled = corpus.build_report(hand_rows(), max_points=2)["length"]
    assert (sampled["rows"], sampled["kept"], sampled["sampled"]) == (5, 2, True)


def test_pairs_accuracy_margins_and_separating_words():
    pr = corpus.build_report(hand_rows(), min_count=1)["pairs"]
    # p1: 2.0 vs -0.5 (won, margin 2.5); p2: 1.0 vs 1.0 (tie, counts half)
    assert (pr["complete"], pr["incomplete"], pr["wins"], pr["ties"], pr["losses"]) == (2, 0, 1, 1, 0)
    assert pr["accuracy"] == pytest.approx(0.75, abs=TOL)
    m = pr["margin"]
    assert m["mean"] == pytest.approx(1.25, abs=TOL)
    assert m["std"] == pytest.approx(math.sqrt(2 * 1.25**2), abs=TOL)
    assert m["quantiles"]["0.5"] == pytest.approx(1.25, abs=TOL)
    assert m["quantiles"]["0.25"] == pytest.approx(0.625, abs=TOL)
    assert sum(m["histogram"]["counts"]) == 2 and m["histogram"]["counts"][0] == m["histogram"]["counts"][-1] == 1
    sep = pr["separating"]
    # only "film" occurs on both sides: chosen 0.75 (n=1), rejected 0.25, 0.0 (n=2)
    assert sep["eligible"] == 1
    d = sep["chosen_higher"][0]
    assert d["word"] == "film" and (d["chosen_count"], d["rejected_count"]) == (1, 2)
    assert d["difference"] == pytest.approx(0.75 - 0.125, abs=TOL)
    assert d["ci_low"] is None  # one chosen occurrence: no std, no interval
    assert d["examples"] == ["p1", "p2"]
    assert corpus.build_report(hand_rows(), min_count=2)["pairs"]["separating"]["eligible"] == 0


def test_separating_interval_is_welch_normal():
    rows = [make_row(f"c{i}", "x y", ["x", " y"], [1.0 + i, 0.0], 1.0, side="chosen", pair_id=f"p{i}") for i in range(3)]
    rows += [make_row(f"r{i}", "x y", ["x", " y"], [0.5 * i, 0.0], 0.0, side="rejected", pair_id=f"p{i}")
             for i in range(3)]
    rep = corpus.build_report(rows, min_count=3, examples=2)
    d = by_key(rep["pairs"]["separating"]["chosen_higher"], "word")["x"]
    half = 1.96 * math.sqrt(1.0 / 3 + 0.25 / 3)  # variances 1 and 0.25
    assert d["difference"] == pytest.approx(2.0 - 0.5, abs=TOL)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((1.5 - half, 1.5 + half), abs=TOL)
    assert d["examples"] == ["p0", "p1"]
    assert rep["pairs"]["accuracy"] == 1.0


def test_skipped_rows_options_and_keys():
    rows = hand_rows() + [{**make_row("bad", "ab", ["a", "b"], [1.0, 2.0], 1.0), "rewards": [1.0]},
                          {**make_row("nan", "ab", ["a", "b"], [1.0, float("nan")], 1.0)}]
    rep = corpus.build_report(rows, min_count=3, examples=1)
    t = rep["totals"]
    assert (t["rows"], t["errors"], t["invalid"], t["used"]) == (8, 1, 2, 5)
    assert [d["id"] for d in t["invalid_examples"]] == ["bad", "nan"]
    assert [d["word"] for d in rep["words"]["highest"]] == ["good", "film"]  # bad has 2 < 3 occurrences
    assert all(len(d["examples"]) == 1 for d in rep["words"]["highest"])
    assert corpus.word_key("  Great!") == "great" and corpus.word_key("«Ça»") == "ça"
    assert corpus.word_key("...") == "..." and corpus.word_key("Great!", strip_punctuation=False) == "great!"
    with pytest.raises(ValueError, match="unit"):
        corpus.build_report([], unit="sentence")
    with pytest.raises(ValueError, match="min_count"):
        corpus.build_report([], min_count=0)


def test_rows_from_a_data_frame():
    """Rows as a Parquet reader may give them: numpy arrays for lists, NaN for empty cells."""
    rows = []
    for row in hand_rows():
        row = {k: np.asarray(v) if isinstance(v, list) else v for k, v in row.items()}
        rows.append({**row, "error": row.get("error") or float("nan"),
                     "pair_id": float("nan") if row.get("pair_id") is None else row["pair_id"]})
    assert corpus.build_report(rows, min_count=1) == corpus.build_report(hand_rows(), min_count=1)


def test_words_after_the_scored_text_are_left_out():
    # a response cut at the model's maximum length: the tokens cover "Good film", not " ok"
    row = make_row("t", "Good film", ["Good", " film"], [1.0, 2.0], 3.0)
    row["response"] = "Good film ok"
    spans, credit, off = corpus.word_credits(row)
    assert spans == [(0, 4), (4, 9)] and credit.tolist() == [1.0, 2.0] and off.size == 0
    rep = corpus.build_report([row], min_count=1)
    assert rep["totals"]["words"] == 2 and "ok" not in by_key(rep["words"]["highest"], "word")


class _Tags(HTMLParser):
    """Every start tag with its attributes (script and style bodies are text, not tags)."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_offline_escaped_and_json_strict(tmp_path):
    rows = hand_rows() + [make_row("<script>alert(1)</script>", f"{HOSTILE} ok", [HOSTILE, " ok"], [0.5, 0.5], 1.0)]
    rep = corpus.build_report(rows, min_count=1)
    rep["extra"] = {"nan": float("nan"), "inf": float("inf")}  # write_report turns them into null
    json_path, html_path = corpus.write_report(rep, tmp_path / "out")

    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    loaded = json.loads(open(json_path, encoding="utf-8").read(), parse_constant=refuse)
    assert loaded["extra"] == {"nan": None, "inf": None}
    assert loaded["totals"]["rows"] == 7

    page = open(html_path, encoding="utf-8").read()
    parser = _Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        for name in ("src", "href"):
            assert "http" not in (attrs.get(name) or "") and not (attrs.get(name) or "").startswith("//"), (tag, attrs)
        assert not any(a.startswith("on") for a in attrs), (tag, attrs)  # no event handler from the data
    assert "img" not in {tag for tag, _ in parser.tags}
    assert sum(tag == "script" and "src" in attrs for tag, attrs in parser.tags) == 0
    assert HOSTILE not in page and "<script>alert(1)</script>" not in page
    assert html.escape(HOSTILE) in page  # the token, shown as text
    assert html.escape("<script>alert(1)</script>") in page  # the id, shown as text
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined once
    assert page.count("Plotly.newPlot") == 6  # words, tokens, deciles, length, margins, separating
    assert corpus.render_html(rep) == page  # reproducible: fixed figure ids, seeded samples


def test_empty_corpus_reports_and_writes(tmp_path):
    rep = corpus.build_report([])
    assert rep["totals"]["rows"] == 0 and rep["pairs"]["accuracy"] is None
    assert rep["length"]["words"]["pearson"] is None and rep["pairs"]["margin"]["mean"] is None
    json_path, html_path = corpus.write_report(rep, tmp_path)
    json.loads(open(json_path, encoding="utf-8").read(), parse_constant=lambda c: 1 / 0)
    assert "No entry reaches the minimum count" in open(html_path, encoding="utf-8").read()


def _check_word_credits(trs, rows):
    for tr, row in zip(trs, rows):
        spans, credit, off = corpus.word_credits(row)
        assert credit.sum() + off.sum() == pytest.approx(tr.rewards.sum(), abs=1e-9)  # telescoping kept
        expected = tr.on_words().rewards  # on_words folds special tokens into the last word
        folded = credit.copy()
        folded[-1] += off.sum()
        np.testing.assert_allclose(folded, expected, atol=1e-9)
        assert spans == list(tr.on_words().offsets)


def test_rows_from_token_rewards_real_model(rm_llama):
    prompts = ["How was the film?", "Tell me about mornings.", "How was the film?"]
    responses = [" The movie was great and the actors were wonderful.", " I love sunny mornings and fresh coffee.",
                 " This is a terrible, awful day."]
    trs = red_core.token_rewards_batch(rm_llama, prompts, responses, batch_size=3)
    trs.append(ValueError("scoring failed"))
    rows = corpus.rows_from_token_rewards(trs, ids=["x", "y", "z", "w"], pair_ids=["q", None, "q", None],
                                          sides=["chosen", "response", "rejected", "response"])
    assert rows[3]["error"] == "ValueError: scoring failed" and rows[0]["model"] == trs[0].model
    _check_word_credits(trs[:3], rows[:3])
    rep = corpus.build_report(rows, min_count=1)
    t = rep["totals"]
    assert (t["rows"], t["errors"], t["scored"]) == (4, 1, 3)
    total = sum(float(tr.rewards.sum()) for tr in trs[:3])
    assert t["credit"]["tokens"] == pytest.approx(total, abs=1e-9)
    assert t["credit"]["words"] + t["credit"]["special"] == pytest.approx(total, abs=1e-9)
    assert rep["pairs"]["complete"] == 1
    expected = 1.0 if trs[0].score > trs[2].score else 0.0 if trs[0].score < trs[2].score else 0.5
    assert rep["pairs"]["accuracy"] == expected
    word_rows = corpus.rows_from_token_rewards([tr.aggregate("word") for tr in trs[:3]])
    _check_word_credits(trs[:3], word_rows)  # rows at word granularity land on the same words
    with pytest.raises(ValueError, match="ids"):
        corpus.rows_from_token_rewards(trs, ids=["x"])


def test_special_tokens_go_to_their_bucket(rm_qwen_chat):
    trs = red_core.token_rewards_batch(rm_qwen_chat, ["Hi", "Hi"], ["Good day!", "Bad day."])
    assert any(any(tr.special) for tr in trs)  # the chat template's end-of-turn tokens
    rows = corpus.rows_from_token_rewards(trs)
    _check_word_credits(trs, rows)
    rep = corpus.build_report(rows, min_count=1)
    n_special = sum(sum(tr.special) for tr in trs)
    assert rep["words"]["special"]["count"] == n_special == rep["totals"]["special_tokens"]
    special_sum = sum(float(tr.rewards[np.array(tr.special)].sum()) for tr in trs)
    assert rep["totals"]["credit"]["special"] == pytest.approx(special_sum, abs=1e-9)
