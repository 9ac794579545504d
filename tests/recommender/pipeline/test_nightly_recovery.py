"""Issue 17.3: after Redis loses its data, `reco nightly` restores every feature view, not only
the lists (the incremental window used to start at the last recorded end time, so item
metadata, stats, profiles, activity and recent items stayed missing). Uses a redis-server of
its own, restarted without data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from recommender.data.tables import build_tables, write_tables
from recommender.featurestore import names
from recommender.featurestore.engine import StreamingEngine
from recommender.featurestore.repo import open_store
from recommender.pipeline.nightly import run_nightly
from tests.support.redis_server import OwnRedis
from tests.support.repo import feast_apply, make_settings
from tests.support.synthetic import synthetic_tables

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed"),
]


def _genres(settings, item_ids: list[str]) -> list:  # type: ignore[no-untyped-def]
    rows = open_store(settings).get_online_features(
        features=[f"{names.ITEM_METADATA}:genres"],
        entity_rows=[{names.ITEM_KEY: i} for i in item_ids],
    )
    return rows.to_dict()["genres"]


def test_nightly_after_redis_lost_its_data_backfills_every_view(tmp_path: Path) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    try:
        settings = make_settings(tmp_path, own.url)
        tables = build_tables(*synthetic_tables(np.random.default_rng(7)))
        write_tables(tables, settings.data_dir)
        items = tables["items"]["item_id"].astype(str).tolist()[:5]
        feast_apply(settings)
        first = run_nightly(settings, retrain=True)
        assert set(first.materialized.values()) == {"full"}
        assert all(_genres(settings, items))

        own.lose_data()
        assert not any(_genres(settings, items))  # the online store is empty now
        second = run_nightly(settings)
        assert second.status == "succeeded"
        for view in (names.ITEM_METADATA, names.ITEM_STATS, names.USER_PROFILE):
            assert second.materialized[view] == "full", second.materialized
        assert all(_genres(settings, items))

        third = run_nightly(settings)  # nothing lost since: incremental again
        assert set(third.materialized.values()) == {"incremental"}
    finally:
        own.stop()


def test_a_night_killed_during_backfill_resumes_without_redoing_finished_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: the first night is killed while it backfills its second view; the rerun
    resumes that run (chunks done stay done) and loads only the views not yet loaded in full,
    continuing the finished one incrementally."""
    own = OwnRedis(tmp_path)
    own.start()
    try:
        settings = make_settings(tmp_path, own.url)
        write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
        feast_apply(settings)
        loaded: list[str] = []
        original = StreamingEngine._materialize

        def killed_at_the_second_view(self, plan, start, end):  # type: ignore[no-untyped-def]
            if loaded:
                raise KeyboardInterrupt("signal 15")
            original(self, plan, start, end)
            loaded.append(plan.view.name)

        monkeypatch.setattr(StreamingEngine, "_materialize", killed_at_the_second_view)
        with pytest.raises(KeyboardInterrupt):
            run_nightly(settings, retrain=True)
        monkeypatch.setattr(StreamingEngine, "_materialize", original)

        rerun = run_nightly(settings)
        assert rerun.status == "succeeded" and rerun.resumed == 1
        assert rerun.materialized.pop(loaded[0]) == "incremental"
        assert set(rerun.materialized.values()) == {"full"}
    finally:
        own.stop()
