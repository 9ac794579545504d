"""ALS's parameters chosen on the future: who is judged, on what, and which point wins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.evaluation.futuretuning import (
    NoFuture,
    choose_params,
    point_name,
    returning_users,
)
from recommender.evaluation.metrics import ndcg_at_k

T0 = pd.Timestamp("2026-01-01", tz="UTC")
CUT = T0 + pd.Timedelta(days=10)
PARAMS = {"factors": 8, "iterations": 5, "regularization": 1.0, "alpha": 1.0, "random_state": 0}


def _frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [u for u, _, _ in rows],
            "item_id": [i for _, i, _ in rows],
            "rating": 1.0,
            "event_timestamp": [T0 + pd.Timedelta(days=d) for _, _, d in rows],
        }
    )


def test_only_returning_users_are_judged_on_new_known_items() -> None:
    frame = _frame(
        [
            ("a", "x", 1), ("a", "y", 2), ("b", "x", 3), ("c", "z", 4),  # before the cut
            ("a", "x", 11),  # seen before: not new
            ("a", "z", 12),  # new for a: judged
            ("a", "w", 13),  # an item unknown before the cut: cannot be served
            ("b", "y", 14), ("b", "y", 15),  # new for b (once)
            ("d", "x", 16),  # a user first seen after the cut: not a returning user
        ]
    )  # fmt: skip
    users, items, matrix, rows, truth = returning_users(frame, CUT.to_pydatetime())
    assert list(users.ids) == ["a", "b", "c"] and list(items.ids) == ["x", "y", "z"]
    assert matrix.shape == (3, 3)
    judged = {users.ids[r]: {items.ids[i] for i in t} for r, t in zip(rows, truth, strict=True)}
    assert judged == {"a": {"z"}, "b": {"y"}}


def _two_tastes(seed: int = 0) -> pd.DataFrame:
    """Two groups of users with disjoint tastes; after the cut-off each user takes the items
    of their own group they had not taken yet."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(60):
        group = u % 2
        catalog = [f"g{group}_{j}" for j in range(12)]
        taken = rng.permutation(catalog)
        rows += [(f"u{u}", item, int(rng.integers(0, 10))) for item in taken[:6]]
        rows += [(f"u{u}", item, 10 + int(rng.integers(0, 5))) for item in taken[6:9]]
    return _frame(rows)


def test_the_point_that_scores_best_on_the_future_is_chosen_and_every_point_is_kept() -> None:
    frame = _two_tastes()
    grid = {"regularization": (0.1, 10.0), "alpha": (1.0, 4.0)}
    chosen, record = choose_params(frame, CUT.to_pydatetime(), PARAMS, grid)
    assert len(record.scores) == 4 and record.users == 60
    best = max(record.scores, key=lambda name: record.scores[name])
    assert point_name(record.best) == best
    assert {k: chosen[k] for k in grid} == record.best
    assert chosen["factors"] == 8 and chosen["random_state"] == 0  # the rest is kept
    # taste wins here: every point's ALS beats the popularity list on the same users
    assert min(record.scores.values()) > record.popularity
    # the popularity figure is the NDCG of the popular lists (seen items excluded)
    _, _, matrix, rows, truth = returning_users(frame, CUT.to_pydatetime())
    counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
    expected = []
    for r, t in zip(rows, truth, strict=True):
        seen = set(matrix[r].indices.tolist())
        order = [i for i in np.argsort(-counts, kind="stable").tolist() if i not in seen]
        expected.append(ndcg_at_k(order[:10], t, 10))
    assert record.popularity == pytest.approx(float(np.mean(expected)), abs=1e-6)


def test_nobody_returning_after_the_cut_off_is_an_error() -> None:
    frame = _frame([("a", "x", 1), ("b", "y", 2), ("c", "x", 12)])
    with pytest.raises(NoFuture):
        choose_params(frame, CUT.to_pydatetime(), PARAMS, {"alpha": (1.0,)})
