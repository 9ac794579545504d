"""The nightly's event-log ingest: incremental, equal to the full rebuild, and at most once
per event even when a run dies before the watermark moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender.config import Settings
from recommender.data.tables import build_tables, read_table, write_tables
from recommender.events.generate import one_day_of_events, synthetic_events
from recommender.events.log import WATERMARK, EventLog, read_events
from recommender.events.records import events_to_interactions
from recommender.pipeline.ingest import ingest_event_log
from tests.recommender.data.test_incremental import TABLES, _assert_same_tables, _rebuild
from tests.support.synthetic import synthetic_tables


def _settings(tmp_path: Path) -> Settings:
    settings = Settings(feature_repo=tmp_path / "feature_repo")
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(3))), settings.data_dir)
    return settings


def test_one_day_of_events_is_ingested_as_the_full_rebuild_would(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    written, day = one_day_of_events(settings.data_dir, settings.event_log_dir, 200, seed=5)
    latest = read_table(settings.data_dir, "interactions")["event_timestamp"].max()
    assert written == 200 and day == latest.floor("D") + pd.Timedelta(days=1)
    newcomers = synthetic_events(["newcomer"], ["a1", "b2"], 4, day, day + pd.Timedelta(hours=1))
    EventLog(settings.event_log_dir, fsync=False).append(newcomers)
    logged = read_events(settings.event_log_dir)
    assert logged["event_timestamp"].between(day, day + pd.Timedelta(days=1)).all()
    new = events_to_interactions(logged)
    _rebuild(settings.data_dir, new, tmp_path / "rebuilt")

    assert ingest_event_log(settings) == 204
    _assert_same_tables(settings.data_dir, tmp_path / "rebuilt")
    assert "newcomer" in set(read_table(settings.data_dir, "user_activity")["user_id"])

    # killed after the tables were written, before the watermark moved: read again, no change
    (settings.event_log_dir / WATERMARK).unlink()
    assert ingest_event_log(settings) == 204
    _assert_same_tables(settings.data_dir, tmp_path / "rebuilt")
    assert ingest_event_log(settings) == 0


def test_dislikes_alone_move_the_watermark_and_change_no_table(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    before = {n: (settings.data_dir / f"{n}.parquet").read_bytes() for n in TABLES}
    now = pd.Timestamp.now(tz="UTC")
    records = synthetic_events(["a_user1"], ["a2"], 3, now - pd.Timedelta(hours=2), now)
    for r in records:
        r.update(event_type="dislike", value=None)
    EventLog(settings.event_log_dir, fsync=False).append(records)
    assert ingest_event_log(settings) == 3
    assert {n: (settings.data_dir / f"{n}.parquet").read_bytes() for n in TABLES} == before
    assert ingest_event_log(settings) == 0
