"""The runner on two taste groups that never mix: the right answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.data.tables import build_tables
from recommender.evaluation.protocols import make_split
from recommender.evaluation.runner import EvalData, evaluate_model, top_lists, truth_by_row
from recommender.evaluation.tuning import DEFAULT_PARAMS, GRIDS, grid_points, tune
from recommender.models import build_model
from tests.support.synthetic import synthetic_tables

SMALL = {
    "als": {"factors": 2, "regularization": 0.1, "alpha": 2.0, "iterations": 15},
    "ease": {"regularization": 10.0},
    "itemknn": {"neighbours": 20, "weighting": "cosine"},
    "bpr": {"factors": 4, "learning_rate": 0.05, "iterations": 200},
    "popularity": {},
}


@pytest.fixture
def data(rng: np.random.Generator) -> EvalData:
    inter = build_tables(*synthetic_tables(rng, per_user=15))["interactions"]
    return EvalData.from_split(make_split("random", inter, seed=1))


@pytest.mark.parametrize("name", ["als", "ease", "itemknn"])
def test_lists_stay_inside_the_users_taste_group(name: str, data: EvalData) -> None:
    model = build_model(name, SMALL[name]).fit(data.train)
    rows = np.arange(len(data.users))
    lists = top_lists(model, data.train, rows, 5, extra_seen=data.valid)
    for row, items in zip(rows, lists, strict=True):
        group = data.users.ids[row][0]
        assert items and all(data.items.ids[i].startswith(group) for i in items)
        assert not set(items) & (set(data.train[row].indices) | set(data.valid[row].indices))


def test_personalised_models_beat_popularity(data: EvalData) -> None:
    pop = evaluate_model("popularity", {}, data, ks=(5,))["metrics"]["ndcg@5"]
    for name in ("als", "ease", "itemknn"):
        result = evaluate_model(name, SMALL[name], data, ks=(5, 10))
        assert result["metrics"]["ndcg@5"] > pop + 0.05, (name, result["metrics"], pop)
        assert result["metrics"]["precision@5"] >= 0.15
        assert {"coverage@10", "novelty@10", "arp@10", "map@10"} <= set(result["metrics"])
        assert result["phase"] == "test" and result["fit_seconds"] >= 0


def test_validation_phase_scores_against_validation(data: EvalData) -> None:
    result = evaluate_model("ease", SMALL["ease"], data, ks=(5,), phase="valid")
    assert result["metrics"]["users"] == len(np.unique(data.valid.nonzero()[0]))
    with pytest.raises(ValueError):
        evaluate_model("ease", SMALL["ease"], data, phase="train")


def test_truth_drops_unknown_ids(data: EvalData) -> None:
    frame = pd.DataFrame(
        {"user_id": ["a_user0", "ghost", "a_user0"], "item_id": ["a1", "a1", "zz"]}
    )
    assert truth_by_row(frame, data.users, data.items) == {
        data.users.row("a_user0"): {data.items.row("a1")}
    }


def test_tuning_tries_every_point_and_keeps_the_best(data: EvalData) -> None:
    grid = {"regularization": [1.0, 10.0, 100.0]}
    result = tune("ease", data, grid=grid, ks=(5,), metric="ndcg@5")
    assert [t["params"] for t in result["trials"]] == grid_points(grid)
    best = max(t["valid"]["ndcg@5"] for t in result["trials"])
    chosen = next(t for t in result["trials"] if t["params"] == result["best_params"])
    assert chosen["valid"]["ndcg@5"] == best
    with pytest.raises(ValueError, match="unknown tuning metric"):
        tune("ease", data, grid={"regularization": [1.0]}, ks=(5,), metric="auc")


def test_defaults_are_points_of_their_grids() -> None:
    assert set(DEFAULT_PARAMS) == set(GRIDS)
    for name, grid in GRIDS.items():
        if grid:
            assert DEFAULT_PARAMS[name] in grid_points(grid), name
    assert grid_points({}) == [{}]


def test_settings_defaults_are_the_tuned_als_defaults() -> None:
    from recommender.config import Settings

    chosen = Settings().training.als.model_dump()
    assert {k: chosen[k] for k in DEFAULT_PARAMS["als"]} == DEFAULT_PARAMS["als"]
