"""Train + nightly on synthetic data, end to end through real Feast and Redis."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recommender.config import Settings
from recommender.contract.published import live_lists, read_precomputed
from recommender.contract.runs import RunManifest
from recommender.featurestore.repo import open_store
from recommender.pipeline.nightly import run_nightly
from recommender.training.artifacts import load_bundle
from tests.support.repo import teardown_repo

pytestmark = pytest.mark.integration


def test_every_known_user_gets_an_online_list_from_their_group(trained_repo: Settings) -> None:
    bundle = load_bundle(trained_repo.artifacts_dir)
    store = open_store(trained_repo)
    assert len(bundle.users) == 60
    for user_id in ("a_user0", "b_user7"):
        stored = read_precomputed(store, user_id, live_lists(trained_repo))
        assert stored is not None and stored["model_version"] == bundle.version
        row = bundle.users.row(user_id)
        seen = {bundle.items.ids[i] for i in bundle.user_items[row].indices}
        assert not seen & set(stored["item_ids"])
        # the 8 unseen items of the user's own group come first
        assert all(i.startswith(user_id[0]) for i in stored["item_ids"][:8])
        assert stored["scores"] == sorted(stored["scores"], reverse=True)
        ids, _ = bundle.als.recommend(np.array([row]), bundle.user_items[[row]], 20)
        assert stored["item_ids"] == [bundle.items.ids[i] for i in ids[0] if i >= 0]


def test_run_manifest_and_offline_table(trained_repo: Settings) -> None:
    runs = sorted((trained_repo.artifacts_dir / "runs").glob("*.json"))
    manifest = RunManifest.model_validate_json(runs[-1].read_text())
    assert manifest.status == "succeeded" and manifest.users == 60 and manifest.lists == "als"
    assert manifest.users_written == 60 and manifest.chunks_done == [0]
    assert manifest.peak_rss_mb["self"] > 0
    assert set(manifest.durations_s) == {
        "events",
        "load",
        "score_and_write",
        "score",
        "encode_write_online",
        "write_offline",
        "materialize",
        "publish",
        "monitor",
    }
    assert manifest.monitor["suspicious"] is False, manifest.monitor
    assert manifest.promotion["promote"] and manifest.model_source == "trained"
    live = live_lists(trained_repo)
    assert live is not None and live.run_id == manifest.run_id and live.slot == manifest.slot
    model_manifest = load_bundle(trained_repo.artifacts_dir).manifest
    assert model_manifest.data.interactions == 720
    assert model_manifest.metrics["als"]["ndcg@10"] > 0
    offline = pd.read_parquet(trained_repo.data_dir / "user_recommendations")
    assert len(offline) >= 60 and manifest.run_id in set(offline["run_id"])
    assert not (trained_repo.data_dir / "staging" / "user_recommendations").exists() or not any(
        (trained_repo.data_dir / "staging" / "user_recommendations").iterdir()
    )


def test_rerun_loads_the_live_model_and_switches_slot(trained_repo: Settings) -> None:
    before_live = live_lists(trained_repo)
    before = len(pd.read_parquet(trained_repo.data_dir / "user_recommendations"))
    manifest = run_nightly(trained_repo)
    assert manifest.model_source == "loaded"
    assert manifest.materialized["user_profile"] == "incremental"
    after = pd.read_parquet(trained_repo.data_dir / "user_recommendations")
    assert len(after) == before + 60
    live = live_lists(trained_repo)
    assert live is not None and before_live is not None
    assert live.slot != before_live.slot and live.run_id == manifest.run_id
    stored = read_precomputed(open_store(trained_repo), "a_user1", live)
    assert stored is not None and stored["run_id"] == manifest.run_id


def test_offline_lists_are_point_in_time_features(trained_repo: Settings) -> None:
    """Feature consumers read the published lists offline, as of any time, from either slot."""
    offline = pd.read_parquet(trained_repo.data_dir / "user_recommendations")
    runs = offline.groupby("run_id")["event_timestamp"].first().sort_values()
    first_ts = runs.iloc[0]
    entity = pd.DataFrame(
        {
            "user_id": ["a_user0", "a_user0"],
            "event_timestamp": [first_ts, pd.Timestamp.now(tz="UTC")],
        }
    )
    got = (
        open_store(trained_repo)
        .get_historical_features(entity, ["user_recommendations_a:run_id"])
        .to_df()
        .sort_values("event_timestamp")
    )
    assert got["run_id"].tolist() == [runs.index[0], runs.index[-1]]


def test_failed_run_is_recorded_in_its_manifest(tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from recommender.errors import InvalidDataset
    from tests.support.repo import make_settings

    settings = make_settings(tmp_path, redis_url)  # no data ingested, no model trained
    with pytest.raises(InvalidDataset):
        run_nightly(settings)
    (manifest_path,) = (settings.artifacts_dir / "runs").glob("*.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "failed" and "InvalidDataset" in manifest["error"]
    assert manifest["finished_at"]


def test_logged_events_are_trained_on_once(tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timedelta, timezone

    from recommender.data.tables import build_tables, read_table, write_tables
    from recommender.events.log import EventLog
    from recommender.events.records import Event, check_events
    from tests.support.repo import feast_apply, make_settings
    from tests.support.synthetic import synthetic_tables

    settings = make_settings(tmp_path, redis_url)
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
    feast_apply(settings)
    now = datetime.now(timezone.utc)
    events = [Event("ev_user", f"b{j}", "like", now - timedelta(hours=1)) for j in range(6)]
    events.append(Event("ev_user", "a1", "dislike", now - timedelta(hours=1)))
    EventLog(settings.event_log_dir).append(check_events(events, now, timedelta(0)))
    try:
        first = run_nightly(settings, retrain=True)
        assert first.events_ingested == 7
        bundle = load_bundle(settings.artifacts_dir)
        row = bundle.users.row("ev_user")
        assert row is not None  # the logged user is now a known user with a nightly list
        assert set(bundle.items.ids[bundle.user_items[row].indices]) == {f"b{j}" for j in range(6)}
        stored = read_precomputed(open_store(settings), "ev_user", live_lists(settings))
        assert stored and all(i.startswith("b") for i in stored["item_ids"][:5])
        count = len(read_table(settings.data_dir, "interactions"))
        assert run_nightly(settings).events_ingested == 0
        assert len(read_table(settings.data_dir, "interactions")) == count
    finally:
        teardown_repo(settings)
