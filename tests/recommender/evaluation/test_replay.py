"""Served-hybrid replay on two taste groups: every path is scored, and personal paths beat
the popularity fallback on the same users and truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.data.tables import build_tables
from recommender.evaluation.replay import replay_hybrid
from tests.support.synthetic import synthetic_tables

ALS = {"factors": 2, "regularization": 0.1, "alpha": 2.0, "iterations": 15}
CUTOFF = pd.Timestamp("2024-02-15", tz="UTC")


@pytest.fixture
def result(rng: np.random.Generator) -> dict:
    tables = build_tables(*synthetic_tables(rng, users_per_group=30, per_user=14))
    inter = tables["interactions"].copy()
    # the last five users of each group arrive after the cutoff: they are new to the model
    late = inter["user_id"].str.extract(r"user(\d+)$")[0].astype(int) >= 25
    inter.loc[late, "event_timestamp"] += pd.Timedelta(days=100)
    return replay_hybrid(
        inter,
        tables["users"].set_index("user_id"),
        tables["items"].set_index("item_id")["title"],
        CUTOFF.to_pydatetime(),
        ALS,
        ks=(5,),
        ns=(1, 3),
    )


def by_path(result: dict) -> dict[str, dict]:
    return {r["path"]: r for r in result["rows"] if r["segment"] == "all"}


def test_every_path_is_scored(result: dict) -> None:
    paths = by_path(result)
    assert {"precomputed", "realtime n=1", "realtime n=3", "realtime profile"} <= set(paths)
    assert {"popular known", "popular n=0", "popular n=1", "popular n=3"} <= set(paths)
    assert result["new_users"] == 10 and result["known_users"] == 50
    assert paths["realtime n=1"]["users"] == 10
    segments = {r["segment"] for r in result["rows"]}
    assert {"gender M", "gender F"} <= segments
    assert any(s.startswith("activity") for s in segments)


def test_personal_paths_beat_the_fallback(result: dict) -> None:
    paths = by_path(result)
    for n in (1, 3):
        assert paths[f"realtime n={n}"]["ndcg@5"] > paths[f"popular n={n}"]["ndcg@5"] + 0.1
    assert paths["realtime profile"]["ndcg@5"] > paths["popular n=0"]["ndcg@5"] + 0.1
    assert paths["precomputed"]["ndcg@5"] > paths["popular known"]["ndcg@5"] + 0.1


def test_cutoff_must_split_the_data(rng: np.random.Generator) -> None:
    tables = build_tables(*synthetic_tables(rng, users_per_group=4, per_user=5))
    with pytest.raises(ValueError, match="leaves no interactions"):
        replay_hybrid(
            tables["interactions"],
            tables["users"].set_index("user_id"),
            tables["items"].set_index("item_id")["title"],
            pd.Timestamp("2030-01-01", tz="UTC").to_pydatetime(),
            ALS,
        )
