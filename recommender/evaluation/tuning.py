"""A small, documented hyper-parameter search on the validation part.

Grids are deliberately small (a 2-core machine, minutes not hours); every trial is kept in the
result so a report shows how flat or sharp the optimum is.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from recommender.evaluation.runner import EvalData, evaluate_model

# Chosen on ML-100K's validation part (random 8:1:1, seed 42; see docs/evaluation.md).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "itemknn": {"neighbours": 200, "weighting": "bm25"},
    "als": {"factors": 128, "regularization": 20.0, "alpha": 2.0, "iterations": 15},
    "bpr": {"factors": 64, "learning_rate": 0.005, "regularization": 0.05, "iterations": 500},
    "ease": {"regularization": 400.0},
}

GRIDS: dict[str, dict[str, Sequence[Any]]] = {
    "popularity": {},
    "itemknn": {"neighbours": [50, 100, 200], "weighting": ["cosine", "tfidf", "bm25"]},
    "als": {
        "factors": [32, 64, 128],
        "regularization": [10.0, 20.0, 50.0],
        "alpha": [2.0, 5.0],
        "iterations": [15],
    },
    "bpr": {
        "factors": [64],
        "learning_rate": [0.005, 0.01],
        "regularization": [0.01, 0.05],
        "iterations": [500],
    },
    "ease": {"regularization": [100.0, 200.0, 400.0, 800.0, 1600.0]},
}


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of a grid, in a stable order (one empty point for an empty grid)."""
    keys = sorted(grid)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def tune(
    name: str,
    data: EvalData,
    grid: Mapping[str, Sequence[Any]] | None = None,
    metric: str = "ndcg@10",
    ks: tuple[int, ...] = (10,),
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Fit every grid point on train, score on validation, return all trials and the best."""
    trials = []
    for point in grid_points(GRIDS.get(name, {}) if grid is None else grid):
        result = evaluate_model(name, point, data, ks, phase="valid")
        trials.append(
            {"params": point, "valid": result["metrics"], "fit_seconds": result["fit_seconds"]}
        )
        if progress:
            progress()
    if metric not in trials[0]["valid"]:
        raise ValueError(f"unknown tuning metric {metric!r}")
    best = max(trials, key=lambda t: t["valid"][metric])
    return {"model": name, "metric": metric, "best_params": best["params"], "trials": trials}
