"""Real Feast repository against real Redis: apply, materialize, online and historical reads."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from recommender.featurestore.repo import historical_user_features, open_store, push_recent_items
from tests.support.repo import (
    feast_apply,
    make_settings,
    run_feast,
    teardown_repo,
    without_batch_engine,
)
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration


def value_at(df: pd.DataFrame, user: str, ts: str, column: str) -> object:
    """The joined value, or None when Feast returned no row for it.

    Feast's file (dask) offline store drops entity rows that have no feature row yet instead
    of returning nulls; either way, no later value may appear.
    """
    hit = df[(df["user_id"] == user) & (df["event_timestamp"] == pd.Timestamp(ts, tz="UTC"))]
    if hit.empty or pd.isna(hit[column].iloc[0]):
        return None
    return hit[column].iloc[0]


def test_online_features_after_materialization(trained_repo: Settings) -> None:
    store = open_store(trained_repo)
    profile = store.get_online_features(
        features=[
            "user_profile:gender",
            "user_profile:occupation",
            "user_activity:interactions_total",
        ],
        entity_rows=[{"user_id": "b_user3"}, {"user_id": "nobody"}],
    ).to_dict()
    assert profile["gender"] == ["F", None]
    assert profile["occupation"] == ["artist", None]
    assert profile["interactions_total"][0] == 12  # every synthetic user has 12 events
    items = store.get_online_features(
        features=["item_metadata:title", "item_metadata:genres", "item_metadata:available"],
        entity_rows=[{"item_id": "a0"}, {"item_id": "a1"}],
    ).to_dict()
    assert items["title"] == ["Action film A0", "Action film A1"]
    assert items["genres"] == [["Action", "Comedy"], ["Action"]]
    assert items["available"] == [True, True]


def test_push_source_updates_the_online_store(trained_repo: Settings) -> None:
    store = open_store(trained_repo)
    push_recent_items(store, "pushed_user", ["b1", "b2"])
    got = store.get_online_features(
        features=["user_recent_items:recent_item_ids"], entity_rows=[{"user_id": "pushed_user"}]
    ).to_dict()
    assert got["recent_item_ids"] == [["b1", "b2"]]


def test_historical_features_are_point_in_time(trained_repo: Settings) -> None:
    store = open_store(trained_repo)
    entity_df = pd.DataFrame(
        {
            "user_id": ["a_user0", "a_user0"],
            "event_timestamp": pd.to_datetime(["2023-06-01", "2025-01-01"], utc=True),
        }
    )
    df = historical_user_features(store, entity_df)
    # before any event the user did not exist yet: no profile, no activity
    assert value_at(df, "a_user0", "2023-06-01", "gender") is None
    assert value_at(df, "a_user0", "2023-06-01", "interactions_total") is None
    assert value_at(df, "a_user0", "2025-01-01", "gender") == "M"
    assert value_at(df, "a_user0", "2025-01-01", "interactions_total") == 12


def test_feature_stamped_after_the_entity_row_never_leaks(tmp_path: Path, redis_url: str) -> None:
    """An event (and a profile) stamped after the entity row's time must not be in that row."""
    settings = make_settings(tmp_path, redis_url)
    inter = pd.DataFrame(
        {
            "user_id": ["u", "u", "w"],
            "item_id": ["i1", "i2", "i1"],
            "rating": [4, 2, 5],
            "timestamp": ["2024-01-01T10:00:00Z", "2024-01-05T10:00:00Z", "2024-01-01T00:00:00Z"],
        }
    )
    users = pd.DataFrame(
        {
            "user_id": ["u", "w"],
            "gender": ["F", "M"],
            "event_timestamp": ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"],
        }
    )
    write_tables(build_tables(inter, users), settings.data_dir)
    feast_apply(settings)
    try:
        store = open_store(settings)
        entity_df = pd.DataFrame(
            {
                "user_id": ["u", "u", "u", "w"],
                "event_timestamp": pd.to_datetime(
                    [
                        "2024-01-05T23:59:00Z",  # after the 2nd event, before its snapshot (Jan 6)
                        "2024-01-06T00:00:00Z",  # the snapshot that includes the 2nd event
                        "2024-01-01T09:00:00Z",  # before any event
                        "2024-01-15T00:00:00Z",
                    ],  # w's profile is only valid from Feb 1
                    utc=True,
                ),
            }
        )
        df = historical_user_features(store, entity_df)
        assert value_at(df, "u", "2024-01-05T23:59:00", "interactions_total") == 1
        assert value_at(df, "u", "2024-01-05T23:59:00", "mean_rating_total") == 4.0
        assert value_at(df, "u", "2024-01-06T00:00:00", "interactions_total") == 2
        assert value_at(df, "u", "2024-01-01T09:00:00", "interactions_total") is None
        assert value_at(df, "w", "2024-01-15T00:00:00", "gender") is None  # profile from Feb 1
        # (the dask store drops the whole row when one view has nothing yet; activity alone:)
        activity = store.get_historical_features(
            entity_df=entity_df[entity_df["user_id"] == "w"],
            features=["user_activity:interactions_total"],
        ).to_df()
        assert activity["interactions_total"].tolist() == [1]
    finally:
        teardown_repo(settings)


def test_hand_run_materialize_incremental_cli(trained_repo: Settings) -> None:
    """The command data engineers run from feature_repo/ (README) works after a nightly run."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert "user_profile" in run_feast(trained_repo, "materialize-incremental", now)


def test_the_duckdb_offline_store_joins_as_feasts_file_store(
    tmp_path: Path, redis_url: str
) -> None:
    """Issue 14: DuckDB, the default offline store now, gives the same point-in-time rows as
    Feast's file (dask) store, on synthetic users at several cut-offs."""
    settings = make_settings(tmp_path, redis_url)
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(5))), settings.data_dir)
    feast_apply(settings)
    users = pd.read_parquet(settings.data_dir / "users.parquet")["user_id"].tolist()
    cuts = pd.to_datetime(["2024-01-10", "2024-01-25", "2024-03-01"], utc=True)
    entity_df = pd.DataFrame(
        [(u, t) for u in users for t in cuts], columns=["user_id", "event_timestamp"]
    )
    got = {}
    yaml = settings.feature_repo / "feature_store.yaml"
    assert "type: duckdb" in yaml.read_text()
    for store_kind in ("duckdb", "file"):
        if store_kind == "file":
            yaml.write_text(without_batch_engine(yaml.read_text()))
        frame = historical_user_features(open_store(settings), entity_df)
        frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[ns, UTC]")
        got[store_kind] = frame.sort_values(["user_id", "event_timestamp"]).reset_index(drop=True)
    duck, file = got["duckdb"], got["file"]
    assert len(file) > len(users)  # most rows have features
    joined = duck.merge(file, on=["user_id", "event_timestamp"], how="left", indicator=True)
    for column in file.columns.drop(["user_id", "event_timestamp"]):
        both = joined[joined["_merge"] == "both"]
        left, right = both[f"{column}_x"].astype(object), both[f"{column}_y"].astype(object)
        same = (left == right) | (left.isna() & right.isna())
        assert same.all(), both.loc[~same, ["user_id", "event_timestamp"]].head()
    # the file store drops rows that have no feature yet; DuckDB keeps them, all null
    extra = joined[joined["_merge"] == "left_only"]
    assert extra[[c for c in extra.columns if c.endswith("_x")]].isna().all().all()
    assert len(duck) == len(entity_df)
