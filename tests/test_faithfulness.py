"""Deletion / insertion curves and their statistics (red_core.faithfulness), on a tiny random RM."""

import numpy as np
import pytest

from red_core import faithfulness as F
from red_core import token_rewards

PROMPT = "How was the film?"
RESPONSE = "Not bad at all, truly great!"  # words: Not | ␣bad | ␣at | ␣all, | ␣truly | ␣great!


def test_word_spans_and_deleted_texts_by_hand(rm_llama):
    credit = np.array([0.1, 0.5, -0.2, 0.0, 0.3, 0.4])  # order: bad, great!, truly, Not, all, at
    cur = F.deletion_curve(rm_llama, PROMPT, RESPONSE, credit, k_max=3)
    assert cur["k"] == [0, 1, 2, 3]
    assert cur["order"][:3] == [1, 5, 4]
    assert cur["texts"] == ["Not bad at all, truly great!", "Not at all, truly great!", "Not at all, truly",
                            "Not at all,"]
    assert cur["drops"][0] == pytest.approx(0.0, abs=1e-6)
    full = F.score_texts(rm_llama, PROMPT, [RESPONSE])[0]
    assert cur["full"] == pytest.approx(full, abs=1e-5)
    assert cur["drops"] == pytest.approx([cur["full"] - s for s in cur["scores"]], abs=1e-9)
    assert cur["aopc"] == pytest.approx(np.mean(cur["drops"][1:]))


def test_insertion_texts_and_empty_response(rm_llama):
    credit = np.array([0.1, 0.5, -0.2, 0.0, 0.3, 0.4])
    cur = F.insertion_curve(rm_llama, PROMPT, RESPONSE, credit, k_max=2)
    assert cur["texts"] == ["", " bad", " bad great!"]
    assert cur["gains"][0] == pytest.approx(0.0, abs=1e-6)
    assert cur["aopc"] == pytest.approx(np.mean(cur["gains"][1:]))
    # the empty response scores as RED's baseline R(x, ∅)
    tr = token_rewards(rm_llama, PROMPT, RESPONSE, method="red")
    assert cur["empty"] == pytest.approx(tr.baseline, abs=1e-4)


def test_credit_from_token_rewards(rm_llama):
    tr = token_rewards(rm_llama, PROMPT, RESPONSE, method="red")
    words = F.word_credit(tr)
    assert words.shape == (6,)
    agg = tr.aggregate("word")
    assert words == pytest.approx([r for r, s in zip(agg.rewards, agg.special) if not s], abs=1e-9)
    a = F.deletion_curve(rm_llama, PROMPT, RESPONSE, tr, k_max=2)
    b = F.deletion_curve(rm_llama, PROMPT, RESPONSE, words, k_max=2)
    assert a["texts"] == b["texts"] and a["drops"] == pytest.approx(b["drops"])
    with pytest.raises(ValueError, match="6 words"):
        F.deletion_curve(rm_llama, PROMPT, RESPONSE, words[:3])


def test_best_deletion_bounds_every_method(rm_llama):
    best = F.best_deletion(rm_llama, PROMPT, RESPONSE, k_max=6)
    assert best["drops"][0] == 0.0 and best["k"] == list(range(7))
    for method in ("red", "occlusion", "uniform"):
        cur = F.deletion_curve(rm_llama, PROMPT, RESPONSE, token_rewards(rm_llama, PROMPT, RESPONSE, method=method),
                               k_max=6)
        assert all(b >= d - 1e-6 for b, d in zip(best["drops"], cur["drops"]))
    rand = F.random_baseline(rm_llama, PROMPT, RESPONSE, k_max=6, n=5)
    assert all(b >= d - 1e-6 for b, d in zip(best["drops"], rand["drops"]))
    with pytest.raises(ValueError, match="limited"):
        F.best_deletion(rm_llama, PROMPT, RESPONSE, max_words=3)


def test_random_baseline_deterministic(rm_llama):
    a = F.random_baseline(rm_llama, PROMPT, RESPONSE, k_max=3, n=4, seed=7)
    b = F.random_baseline(rm_llama, PROMPT, RESPONSE, k_max=3, n=4, seed=7)
    c = F.random_baseline(rm_llama, PROMPT, RESPONSE, k_max=3, n=4, seed=8)
    assert a == b
    assert a["aopc_per_order"] != c["aopc_per_order"]
    assert a["drops"][0] == pytest.approx(0.0, abs=1e-6)


def test_bootstrap_ci_contains_mean():
    v = np.random.default_rng(0).normal(1.0, 2.0, size=50)
    mean, lo, hi = F.bootstrap_ci(v, n=1000, seed=0)
    assert mean == pytest.approx(v.mean())
    assert lo < mean < hi
    assert F.bootstrap_ci(v, seed=3) == F.bootstrap_ci(v, seed=3)


def test_paired_test():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, size=40)
    same = F.paired_test(a, a.copy())
    assert same["p"] == pytest.approx(1.0) and same["mean_diff"] == 0.0
    clear = F.paired_test(a + 1.0 + rng.normal(0, 0.1, size=40), a)
    assert clear["p"] < 0.001 and clear["mean_diff"] > 0.9
