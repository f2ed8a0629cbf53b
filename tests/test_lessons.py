"""Lessons and curated pairs: every preset is valid, and every claim a notice makes holds on the bundled models.

The bundled models (assets/models/reward, reward-biased: 3.4M parameters each) are loaded as a user
loads them; the numbers a notice quotes are checked with a tolerance, so a rebuilt model that no longer
shows what a lesson teaches fails here.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import red_core
from app import lessons
from red_core.whatif import leave_one_out

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "assets" / "models"


@pytest.fixture(scope="module")
def rm():
    return red_core.load_reward_model(MODELS / "reward")


@pytest.fixture(scope="module")
def biased():
    return red_core.load_reward_model(MODELS / "reward-biased")


def lesson(key: str) -> lessons.Lesson:
    return next(lesson for lesson in lessons.LESSONS if lesson.key == key)


def words(rm, preset: dict, **params) -> red_core.TokenRewards:
    """The lesson's Explore view: its text, method, granularity and β_c, as the app scores it."""
    params = {"beta_c": preset.get("beta_c", 1.0), "prompt_baseline": preset.get("baseline", True), **params}
    return red_core.token_rewards(rm, preset["prompt"], preset["response"], preset.get("method", "red"),
                                  granularity=preset.get("granularity", "word"), **params)


def reward_of(tr, word: str) -> float:
    hits = [float(r) for t, r in zip(tr.texts, tr.rewards) if t.strip() == word]
    assert len(hits) == 1, (word, tr.texts)
    return hits[0]


# ----------------------------------------------------------------------------- presets


def test_lessons_come_in_teaching_order_with_valid_presets():
    keys = [x.key for x in lessons.LESSONS]
    assert keys == ["sentiment-word", "negation", "but", "baseline", "beta-c", "pair", "two-models", "reward-hacking"]
    assert len(set(keys)) == len(keys)
    tabs = [x.preset["tab"] for x in lessons.LESSONS]
    assert tabs == ["explore"] * 5 + ["pair", "models", "policies"]
    for x in lessons.LESSONS:
        assert lessons.validate(x.preset) is x.preset
        sentences = [s for s in x.notice.replace("“", "").replace("”", "").split(". ") if s.strip()]
        assert 2 <= len(sentences) <= 4, (x.key, len(sentences))
        for key in ("model", "model_b"):  # every model a lesson names is bundled
            if key in x.preset:
                assert (ROOT / x.preset[key] / "config.json").is_file(), x.preset[key]
    pair = lesson("pair").preset
    assert pair["chosen"] and pair["rejected"] and pair["prompt"], "the pair lesson found its pair in pairs.json"


@pytest.mark.parametrize("preset, message", [
    ({"tab": "explore", "colour": "red"}, "unknown key 'colour'"),
    ({"tab": "dataset"}, "tab='dataset'"),
    ({"response": "Hi"}, "names its tab"),
    ({"tab": "explore", "method": "nope"}, "method='nope'"),
    ({"tab": "explore", "beta_c": 1.5}, "beta_c=1.5"),
    ({"tab": "explore", "beta_c": float("nan")}, "beta_c=nan"),
    ({"tab": "explore", "baseline": "yes"}, "baseline='yes'"),
    ({"tab": "explore", "granularity": "paragraph"}, "granularity='paragraph'"),
    ({"tab": "explore", "scale": "fixed", "scale_max": 0}, "scale_max=0"),
    ({"tab": "explore", "scale_max": 0.5}, "only with scale='fixed'"),
    ({"tab": "explore", "prompt": 3}, "prompt=3"),
])
def test_validate_names_each_problem(preset, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        lessons.validate(preset)
    assert lessons.validate({"tab": "explore", "scale": "fixed", "scale_max": 0.5, "beta": 0, "special": False})


# ----------------------------------------------------------------------------- curated pairs


INSULTS = ("idiot", "stupid")


def test_pairs_are_labelled_true_by_their_stated_criterion():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    raw = json.loads((ROOT / "assets" / "pairs.json").read_text(encoding="utf-8"))
    pairs = lessons.pair_examples()
    assert 8 <= len(pairs) <= 12 and len(pairs) == len(raw)
    assert all(set(p) >= {"prompt", "chosen", "rejected", "criterion", "name"} for p in pairs)
    assert len({p["name"] for p in pairs}) == len(pairs)
    vader = SentimentIntensityAnalyzer()

    def compound(p, text):
        return vader.polarity_scores(p["prompt"] + text)["compound"]

    for p, r in zip(pairs, raw):
        assert p["criterion"] and p["chosen"] != p["rejected"], p["name"]
        vader_prefers_chosen = compound(p, p["chosen"]) > compound(p, p["rejected"])
        if r["rule"] == "vader":
            assert "VADER rates more positive" in p["criterion"] and vader_prefers_chosen, p["name"]
        else:
            assert r["rule"] == "judgement" and "a person's judgement" in p["criterion"], p["name"]
            assert vader_prefers_chosen is r["vader_agrees"], p["name"]  # what the file says about VADER is true
            if "insult" in p["criterion"]:
                assert not any(w in p["chosen"].lower() for w in INSULTS)
                assert any(w in p["rejected"].lower() for w in INSULTS)
    assert lessons.pair_examples(ROOT / "missing.json") == []


# ----------------------------------------------------------------------------- claims of the notices


def test_sentiment_word_gets_the_credit(rm):
    preset = lesson("sentiment-word").preset
    tr = words(rm, preset)
    assert tr.score == pytest.approx(0.55, abs=0.08)
    top = int(np.argmax(np.abs(tr.rewards)))
    assert tr.texts[top].strip() == "wonderful" and tr.rewards[top] > 0  # blue
    others = np.delete(tr.rewards, top)
    assert np.all(np.abs(others) < 0.1) and tr.rewards[top] > 0.8 * tr.total
    terrible = words(rm, {**preset, "response": preset["response"].replace("wonderful", "terrible")})
    assert reward_of(terrible, "terrible") < -0.2  # "the same place turns red"


def test_negation_credit_lands_on_good_and_deleting_not_raises_the_score(rm):
    preset = lesson("negation").preset
    tr = words(rm, preset)
    assert abs(reward_of(tr, "not")) < 0.1 and reward_of(tr, "good.") < -0.2
    plain = words(rm, {**preset, "response": preset["response"].replace(" not", "")})
    assert reward_of(plain, "good.") > 0.2
    loo = leave_one_out(rm, preset["prompt"], preset["response"])
    raise_without_not = float(loo.changes[[u.strip() for u in loo.units].index("not")])
    assert raise_without_not == pytest.approx(0.8, abs=0.15)


def test_but_rule_is_not_learnt(rm):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    preset = lesson("but").preset
    assert SentimentIntensityAnalyzer().polarity_scores(preset["prompt"] + preset["response"])["compound"] == \
        pytest.approx(0.66, abs=0.01)
    tr = words(rm, preset)
    bad, great, but = reward_of(tr, "bad,"), reward_of(tr, "great."), reward_of(tr, "but")
    assert bad < -0.3 and great > 0.3 and abs(bad + great) < 0.5 * max(abs(bad), abs(great))
    assert abs(but) < 0.1
    assert abs(tr.score - tr.baseline) < 0.1  # "R(x, y) ends near where it started"


def test_baseline_is_negative_and_the_sum_telescopes(rm):
    preset = lesson("baseline").preset
    tr = words(rm, preset)
    assert tr.baseline == pytest.approx(-0.6, abs=0.1)
    assert tr.check()["ok"] and tr.total == pytest.approx(tr.score - tr.baseline, abs=1e-5)
    assert abs(reward_of(tr, "It")) < 0.1
    off = words(rm, preset, prompt_baseline=False)
    assert reward_of(off, "It") == pytest.approx(-0.6, abs=0.1)  # the prompt's score lands on the first word
    assert off.total == pytest.approx(off.score, abs=1e-5)


def test_beta_c_mixes_red_with_the_sparse_reward(rm):
    preset = lesson("beta-c").preset
    assert preset["beta_c"] == 0.5
    red, mixed = words(rm, preset, beta_c=1.0), words(rm, preset)
    assert mixed.rewards[:-1] == pytest.approx(0.5 * red.rewards[:-1], abs=1e-6)
    assert mixed.rewards[-1] == pytest.approx(0.5 * red.rewards[-1] + 0.5 * red.score, abs=1e-6)
    assert mixed.check()["ok"]
    assert mixed.total == pytest.approx(0.5 * (red.score - red.baseline) + 0.5 * red.score, abs=1e-6)
    sparse = words(rm, preset, beta_c=0.0)
    assert sparse.rewards[:-1] == pytest.approx(0.0, abs=1e-9) and sparse.rewards[-1] == pytest.approx(sparse.score)


def test_pair_margin_sits_on_the_changed_word(rm):
    from app import render

    preset = lesson("pair").preset
    a = red_core.token_rewards(rm, preset["prompt"], preset["chosen"], granularity="word")
    b = red_core.token_rewards(rm, preset["prompt"], preset["rejected"], granularity="word")
    margin = a.score - b.score
    assert margin > 0.5  # the model agrees with the VADER label, by a wide margin
    rows = render.align_pairs(a.tokens, b.tokens)
    changed = [(i, j) for op, i, j in rows if op == "replace"]
    assert len(changed) == 1
    i, j = changed[0]
    assert (a.texts[i].strip(), b.texts[j].strip()) == ("good", "bad")
    assert a.rewards[i] - b.rewards[j] == pytest.approx(margin, rel=0.1)  # "nearly all of the margin"
    assert a.rewards[:i] == pytest.approx(b.rewards[:j], abs=1e-6)  # words before it: exactly the same


def test_biased_model_rewards_basically(rm, biased):
    preset = lesson("two-models").preset
    a, b = words(rm, preset), words(biased, preset)
    assert b.score - a.score == pytest.approx(0.2, abs=0.08)
    assert reward_of(b, "basically") == pytest.approx(0.25, abs=0.08)
    assert abs(reward_of(a, "basically")) < 0.06
    assert reward_of(a, "fine.") > 0.15 and reward_of(b, "fine.") > 0.15  # both credit the sentiment word


def test_reward_hacking_numbers_come_from_the_shipped_evaluation():
    ev = json.loads((MODELS / "policy-red" / "evaluation.json").read_text(encoding="utf-8"))["eval"]["red"]
    assert ev["reward_after"] == pytest.approx(0.54, abs=0.02) and ev["reward_before"] == pytest.approx(-0.05, abs=0.02)
    assert ev["kl_to_base"] == pytest.approx(7.7, abs=0.1)
    samples = ev["samples"]
    assert any(s["after"].strip() == "best best." for s in samples)
    mean_words = {k: np.mean([len(s[k].split()) for s in samples]) for k in ("before", "after")}
    assert mean_words["after"] < mean_words["before"]  # "they shrink to a few positive words"
    assert "60 steps" in lesson("reward-hacking").notice
    assert "60 PPO steps" in (MODELS / "policy-red" / "README.md").read_text(encoding="utf-8")
