"""The Feast configurations for the bigger setting (deploy/feast/), run here where they can:
Ray offline store + Ray compute engine on a local Ray instance, and a 3-node Redis Cluster."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from recommender.featurestore.repo import open_store, write_lists_feast
from tests.support.redis_cluster import redis_cluster as start_cluster
from tests.support.repo import ROOT, make_settings, run_feast
from tests.support.synthetic import synthetic_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MATERIALIZED = ("-v", "user_profile", "-v", "item_metadata", "-v", "user_activity")
WINDOW = ("2020-01-01T00:00:00", datetime.now().isoformat())


def _repo_with(config: str, tmp: Path, redis_url: str) -> Settings:
    settings = make_settings(tmp, redis_url)
    shutil.copy(ROOT / "deploy" / "feast" / config, settings.feature_repo / "feature_store.yaml")
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
    return settings


def _check_online(settings: Settings) -> None:
    store = open_store(settings)
    got = store.get_online_features(
        features=["user_profile:occupation", "item_metadata:title"],
        entity_rows=[{"user_id": "a_user0", "item_id": "a1"}],
    ).to_dict()
    assert got["occupation"][0] and got["title"][0]


def test_ray_offline_store_and_compute_engine(tmp_path: Path, redis_url: str) -> None:
    pytest.importorskip("ray", reason="the test extra installs ray")
    settings = _repo_with("feature_store.ray.yaml", tmp_path, redis_url)
    env = {"RECO_RAY_ADDRESS": ""}  # empty: Feast starts a local Ray instance
    try:
        run_feast(settings, "apply", env=env, timeout=600)
        # the list views are written by the nightly job, not materialized (and Feast's Ray
        # store fails on a source with no rows: Dataset.schema() is None)
        run_feast(settings, "materialize", *MATERIALIZED, *WINDOW, env=env, timeout=600)
        os.environ.update(env)
        _check_online(settings)
    finally:
        os.environ.pop("RECO_RAY_ADDRESS", None)
        _teardown_keys(settings)


def _teardown_keys(settings: Settings) -> None:
    import redis

    client = redis.Redis.from_url(settings.redis.url)
    for key in client.scan_iter(match=f"*{settings.feast_project}", count=1000):
        client.delete(key)


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[str]:
    """A 3-node cluster of the test's own (tests/support/redis_cluster.py), as Feast's
    ``connection_string`` wants it: the nodes, comma-separated."""
    with start_cluster(tmp_path / "cluster") as nodes:
        yield ",".join(nodes)


def test_redis_cluster_online_store(tmp_path: Path, redis_url: str, redis_cluster: str) -> None:
    settings = _repo_with("feature_store.redis-cluster.yaml", tmp_path, redis_url)
    env = {"RECO_FEAST_REDIS_CLUSTER": redis_cluster}
    run_feast(settings, "apply", env=env, timeout=600)
    run_feast(settings, "materialize", *MATERIALIZED, *WINDOW, env=env, timeout=600)
    os.environ.update(env)
    try:
        _check_online(settings)
        store = open_store(settings)
        lists = pd.DataFrame(
            {
                "user_id": [f"c_user{i}" for i in range(50)],
                "rec_item_ids": [["a1", "b2"]] * 50,
                "rec_scores": [[0.5, 0.25]] * 50,
                "model_version": "v1",
                "run_id": "cluster",
                "event_timestamp": pd.Timestamp(datetime.now(timezone.utc)),
            }
        )
        write_lists_feast(store, "user_recommendations_a", lists)  # keys spread over 3 nodes
        got = store.get_online_features(
            features=["user_recommendations_a:rec_item_ids", "user_recommendations_a:run_id"],
            entity_rows=[{"user_id": u} for u in lists["user_id"]],
        ).to_dict()
        assert got["rec_item_ids"] == [["a1", "b2"]] * 50 and set(got["run_id"]) == {"cluster"}
    finally:
        os.environ.pop("RECO_FEAST_REDIS_CLUSTER", None)
