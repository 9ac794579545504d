"""ALS parameters chosen on the future: fitted before a time cut-off, judged by the lists the
nightly job would store for the users who came back after it (pure; no I/O).

The validation search of :mod:`recommender.evaluation.tuning` scores a random split, where
a user's held-out items are a random tenth of their history; on the future, what users do
next leans on what is popular and fresh, and the parameters that win change (on ML-1M's 80%
time quantile, regularization 100 instead of 20 takes the known users' lists from 0.94x to
1.11x their popularity fallback; docs/evaluation.md). `reco train` runs this search inside its
own training data before it fits the model it serves.

Example: ``choose_params(interactions, cutoff, {"factors": 64, ...})`` fits one ALS per point
of :data:`FUTURE_GRID` on the interactions before ``cutoff`` and returns the point whose
top-10 lists (seen items excluded: :func:`~recommender.models.topn.factor_top_n`, the
nightly's own function) score the best NDCG@10 on each returning user's items after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from recommender.data.vocab import Vocab, user_item_matrix
from recommender.evaluation.metrics import ndcg_at_k
from recommender.evaluation.tuning import grid_points
from recommender.models.configs import als_config
from recommender.models.popularity import PopularityModel
from recommender.models.topn import factor_top_n
from recommender.training.manifest import FutureTuning

# the parameters that move ALS between "taste" and "what everyone watches"; factors and
# iterations stay as configured (they changed little on the future in the searches above)
FUTURE_GRID: dict[str, Sequence[float]] = {
    "regularization": (20.0, 50.0, 100.0, 200.0),
    "alpha": (1.0, 2.0, 4.0),
}


class NoFuture(ValueError):
    """The cut-off leaves no returning user with something new after it."""


def point_name(point: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in sorted(point.items()))


def returning_users(
    interactions: pd.DataFrame, cutoff: datetime
) -> tuple[Vocab, Vocab, Any, np.ndarray, list[set[int]]]:
    """The vocabularies and matrix of what came before ``cutoff``, the rows of the users
    active on both sides, and each one's new items after it (in the catalog, not seen)."""
    ts = interactions["event_timestamp"]
    before, after = interactions[ts < cutoff], interactions[ts >= cutoff]
    users = Vocab.from_ids(sorted(before["user_id"].unique()))
    items = Vocab.from_ids(sorted(before["item_id"].unique()))
    matrix = user_item_matrix(before, users, items)
    user_rows, item_rows = users.rows(after["user_id"]), items.rows(after["item_id"])
    keep = (user_rows >= 0) & (item_rows >= 0)
    later = pd.DataFrame({"u": user_rows[keep], "i": item_rows[keep]}).drop_duplicates()
    seen = matrix.tocoo()
    old = pd.MultiIndex.from_arrays([seen.row, seen.col])
    later = later[~pd.MultiIndex.from_frame(later[["u", "i"]]).isin(old)]
    grouped = later.groupby("u")["i"].agg(set)
    return users, items, matrix, grouped.index.to_numpy(np.int64), list(grouped)


def _ndcg(lists: np.ndarray, truth: list[set[int]], k: int) -> float:
    return float(
        np.mean([ndcg_at_k(r[r >= 0].tolist(), t, k) for r, t in zip(lists, truth, strict=True)])
    )


def choose_params(
    interactions: pd.DataFrame,
    cutoff: datetime,
    params: Mapping[str, Any],
    grid: Mapping[str, Sequence[float]] = FUTURE_GRID,
    k: int = 10,
) -> tuple[dict[str, Any], FutureTuning]:
    """``params`` with the :data:`FUTURE_GRID` point (``grid``) whose lists score the best
    NDCG@``k`` after ``cutoff`` (ties: the first point in order), and the record of the
    search. Raises :class:`NoFuture` when nobody returns after the cut-off."""
    _, _, matrix, rows, truth = returning_users(interactions, cutoff)
    if not len(rows):
        raise NoFuture(f"no user active before {cutoff} has new items after it")
    seen = matrix[rows]
    popular, _ = PopularityModel().fit(matrix).recommend(rows, seen, k)
    scores: dict[str, float] = {}
    best_point: dict[str, Any] = {}
    for point in grid_points(grid):
        model = als_config({**params, **point}).build().fit(matrix)
        lists, _ = factor_top_n(model.user_factors[rows], model.item_factors, seen, k)
        scores[point_name(point)] = _ndcg(lists, truth, k)
        if not best_point or scores[point_name(point)] > scores[point_name(best_point)]:
            best_point = point
    record = FutureTuning(
        cutoff=pd.Timestamp(cutoff).isoformat(),
        users=len(rows),
        k=k,
        best={key: float(v) for key, v in best_point.items()},
        scores={name: round(v, 6) for name, v in scores.items()},
        popularity=round(_ndcg(popular, truth, k), 6),
    )
    return {**params, **best_point}, record
