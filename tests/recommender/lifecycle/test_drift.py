"""Drift figures: a planted shift is found, an unshifted sample stays quiet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.lifecycle.drift import Thresholds, feature_drift, gini, list_drift, overlap, psi


def _users(
    rng: np.random.Generator, n: int, shift: float = 0.0, women: float = 0.3
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(35 + shift, 10, n).round(),
            "gender": np.where(rng.random(n) < women, "F", "M"),
            "interactions_30d": rng.poisson(5 + shift, n),
        }
    )


def test_planted_shift_is_detected_and_a_fresh_sample_is_quiet(rng: np.random.Generator) -> None:
    train = _users(rng, 5000)
    same = feature_drift(train, _users(rng, 2000), ["age", "gender", "interactions_30d"])
    assert (same["psi"] < 0.05).all(), same
    assert (same["ks_pvalue"].dropna() > 0.001).all()
    shifted = feature_drift(
        train, _users(rng, 2000, shift=8, women=0.7), ["age", "gender", "interactions_30d"]
    )
    assert (shifted["psi"] > 0.25).all(), shifted
    assert (shifted["ks_pvalue"].dropna() < 1e-6).all()
    reasons = Thresholds().verdict(shifted, None)
    assert len(reasons) == 3 and "PSI" in reasons[0]
    assert Thresholds().verdict(same, None) == []


def test_psi_of_identical_distributions_is_zero_and_unseen_categories_count() -> None:
    s = pd.Series(["a", "b"] * 50)
    assert psi(s, s) == pytest.approx(0.0)
    assert psi(s, pd.Series(["c"] * 100)) > 1


def test_gini() -> None:
    assert gini(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)  # (n-1)/n for one item
    assert gini(np.array([])) == 0.0


def _lists(users: list[str], items: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": users, "rec_item_ids": items, "rec_scores": [[1.0] * len(i) for i in items]}
    )


def test_list_figures_and_overlap() -> None:
    now = _lists(["u1", "u2"], [list("abcdefghij"), list("abcdefghij")])
    before = _lists(["u1", "u3"], [list("abcdeklmno"), list("abcdefghij")])
    assert overlap(now, before) == (0.5, 1)
    out = list_drift(now, before, n_items=40)
    assert out["coverage"] == pytest.approx(10 / 40)
    assert out["coverage_previous"] == pytest.approx(15 / 40)
    assert out["overlap_previous"] == 0.5 and out["overlap_users"] == 1
    assert Thresholds(min_overlap=0.6).verdict(None, out) == [
        "top-10 overlap with the previous run 0.500 < 0.6"
    ]
    collapsed = list_drift(_lists(["u1"], [list("a")]), before, n_items=40)
    assert any("coverage fell" in r for r in Thresholds().verdict(None, collapsed))
