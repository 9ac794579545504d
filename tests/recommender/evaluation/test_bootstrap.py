"""Paired bootstrap intervals: hand-checked edge cases and a difference that is there."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.evaluation.bootstrap import paired_bootstrap


def test_identical_models_have_a_zero_interval() -> None:
    values = np.array([0.1, 0.5, 0.0, 1.0])
    got = paired_bootstrap(values, values, "a", "b")
    assert (got.diff, got.low, got.high, got.ratio) == (0.0, 0.0, 0.0, 1.0)
    assert not got.excludes_zero


def test_a_consistent_gain_excludes_zero_and_noise_does_not() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, size=500)
    better = paired_bootstrap(base + 0.05 + rng.normal(0, 0.01, 500), base, seed=1)
    assert better.excludes_zero and better.low > 0.04 and better.high < 0.06
    noise = paired_bootstrap(base + rng.normal(0, 0.2, 500), base, seed=1)
    assert noise.low < 0 < noise.high and not noise.excludes_zero


def test_the_interval_is_seeded() -> None:
    a, b = np.arange(10) / 10, np.zeros(10)
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap(a, b[:5])
