"""bench/bench_frontier.py's definitions on hand-made curves: KL-matched interpolation, steps to reach, intervals."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def frontier():
    sys.path.insert(0, str(BENCH))  # the bench imports its sibling bench_train
    try:
        spec = importlib.util.spec_from_file_location("bench_frontier", BENCH / "bench_frontier.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_gold_at_matched_kl_interpolates_at_the_first_crossing(frontier):
    kl = np.array([0.0, 1.0, 3.0, 2.0, 5.0])
    gold = np.array([0.0, 0.1, 0.5, 0.2, 0.9])
    assert frontier.at_kl(kl, gold, 2.0) == pytest.approx(0.3)  # halfway from (1, 0.1) to (3, 0.5), not the later 2.0
    assert frontier.at_kl(kl, gold, 1.0) == pytest.approx(0.1)
    assert frontier.at_kl(kl, gold, 6.0) is None  # never reached
    assert frontier.at_kl(np.array([np.nan, 1.0, 2.0]), np.array([np.nan, 0.0, 1.0]), 1.5) == pytest.approx(0.5)
    assert frontier.at_kl(np.array([2.0, 3.0]), np.array([0.4, 0.5]), 1.0) is None  # started above: not observed


def test_steps_to_reach_needs_the_target_within_the_budget(frontier):
    w = frontier.WINDOW
    gold = np.r_[np.zeros(w), np.full(10, 1.0)]  # smoothed gold reaches 0.4 at step w + 2 (2 of 5 at 1.0)
    kl = np.r_[np.zeros(w + 1), np.full(9, 20.0)]  # but the smoothed KL is 4 > 3 by then
    assert frontier.steps_to_reach(gold, np.zeros_like(gold), 0.4, 3.0) == w + 2
    assert frontier.steps_to_reach(gold, kl, 0.4, 3.0) is None
    assert frontier.steps_to_reach(gold, kl, 0.2, 3.0) == w + 1  # 1 of 5 at 1.0, KL window mean 0


def test_intervals_over_seeds(frontier):
    out = frontier.interval([0.1, 0.2, 0.3])
    half = 4.303 * 0.1 / np.sqrt(3)
    assert out["mean"] == pytest.approx(0.2) and out["ci95"] == pytest.approx([0.2 - half, 0.2 + half])
    assert "ci95" not in frontier.interval([0.5]) and frontier.interval([])["mean"] is None
