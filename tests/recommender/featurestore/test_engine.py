"""The streaming engine against Feast's own: the same synthetic tables in two Feast projects,
one materialized by Feast's default (local) engine, one by ``StreamingEngine`` named in its
``feature_store.yaml``; every Redis hash and every ``get_online_features`` row must be the same,
and Feast's registry must record the intervals. Real Redis, real Feast, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from recommender.featurestore import engine as engine_module
from recommender.featurestore.names import (
    ITEM_METADATA,
    ITEM_STATS,
    USER_ACTIVITY,
    USER_PROFILE,
    USER_RECENT_ITEMS,
)
from recommender.featurestore.repo import (
    feast_cli_env,
    materialize,
    materialized_key,
    open_store,
    push_recent_items,
)
from tests.support.repo import feast_apply, make_settings, teardown_repo, without_batch_engine
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration

VIEWS = (USER_PROFILE, USER_ACTIVITY, USER_RECENT_ITEMS, ITEM_METADATA, ITEM_STATS)
BATCH_ROWS = 7  # far below the tables' sizes: many batches, several round trips each
ENGINE_YAML = f"""
batch_engine:
  type: recommender.featurestore.engine.StreamingEngine
  batch_rows: {BATCH_ROWS}
  pipeline_rows: 3
"""
# A view with what the repository's own do not have: a created timestamp (the tie-break of
# equal event timestamps), a field mapping (key and feature renamed), several row groups.
EXTRA_VIEW = """

extra_view = FeatureView(
    name="extra_scores",
    entities=[user],
    ttl=timedelta(0),
    source=FileSource(
        name="extra_source",
        path="data/extra.parquet",
        timestamp_field="happened_at",
        created_timestamp_column="created_at",
        field_mapping={"uid": "user_id", "raw_score": "score"},
    ),
    schema=[
        Field(name="score", dtype=Float32),
        Field(name="count", dtype=Int64),
        Field(name="tags", dtype=Array(String)),
        Field(name="label", dtype=String),
    ],
)
"""
EARLIEST = datetime(2020, 1, 1, tzinfo=timezone.utc)
MIDWAY = datetime(2024, 2, 1, tzinfo=timezone.utc)  # the synthetic events span Jan-Feb 2024


def _repos(
    tmp: Path, redis_url: str, key_ttl: bool = False, extra: pa.Table | None = None
) -> tuple[Settings, Settings]:
    """(Feast's engine, the streaming engine): the same tables, applied, in two projects;
    ``extra``: the table of the view :data:`EXTRA_VIEW` adds to the definitions."""
    tables = build_tables(*synthetic_tables(np.random.default_rng(7)))
    pair = []
    for name, engine_yaml in (("feast", ""), ("streaming", ENGINE_YAML)):
        settings = make_settings(tmp / name, redis_url)
        path = settings.feature_repo / "feature_store.yaml"
        text = without_batch_engine(path.read_text())
        if key_ttl:  # Feast's key expiry (EXPIRE after each HSET), in both projects
            text = text.replace("  type: redis\n", "  type: redis\n  key_ttl_seconds: 86400\n")
        path.write_text(text + engine_yaml)
        write_tables(tables, settings.data_dir)
        if extra is not None:
            pq.write_table(extra, settings.data_dir / "extra.parquet", row_group_size=50)
            with (settings.feature_repo / "definitions.py").open("a") as f:
                f.write(EXTRA_VIEW)
        feast_apply(settings)
        pair.append(settings)
    return pair[0], pair[1]


def _teardown(*repos: Settings) -> None:
    for settings in repos:
        teardown_repo(settings)
        client = redis.Redis.from_url(settings.redis.url)
        client.delete(materialized_key(settings.feast_project))  # ours


def _entities(settings: Settings) -> dict[str, list[str]]:
    import pandas as pd

    users = pd.read_parquet(settings.data_dir / "users.parquet")["user_id"].tolist()
    items = pd.read_parquet(settings.data_dir / "items.parquet")["item_id"].tolist()
    return {"user_id": [*users, "nobody"], "item_id": [*items, "nothing"]}


def _online(settings: Settings) -> dict[str, dict[str, list[Any]]]:
    """Every materialized view's features and timestamps for every entity (and an unknown)."""
    store = open_store(settings)
    entities = _entities(settings)
    out = {}
    for name in VIEWS:
        view = store.get_feature_view(name)
        key = view.entity_columns[0].name
        out[name] = store.get_online_features(
            features=[f"{name}:{f.name}" for f in view.features],
            entity_rows=[{key: e} for e in entities[key]],
        ).to_dict(include_event_timestamps=True)
    return out


def _hashes(settings: Settings) -> dict[tuple[str, str], dict[bytes, bytes]]:
    """The raw Redis hash of every entity: field -> bytes, as Feast's layout stores them."""
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    client = redis.Redis.from_url(settings.redis.url)
    pipe = client.pipeline(transaction=False)
    names = []
    for key, values in _entities(settings).items():
        for value in values:
            entity = EntityKey(join_keys=[key], entity_values=[Value(string_val=value)])
            pipe.hgetall(_redis_key(settings.feast_project, entity, 3))
            names.append((key, value))
    return dict(zip(names, pipe.execute(), strict=True))


def _assert_same(feast: Settings, streaming: Settings) -> dict[str, dict[str, list[Any]]]:
    expected, got = _online(feast), _online(streaming)
    for name in VIEWS:
        assert got[name] == expected[name], name
    hashes = _hashes(streaming)
    assert hashes == _hashes(feast)
    for name in VIEWS:  # (recent items are past their ttl when read, but they are stored)
        stored = sum(f"_ts:{name}".encode() in fields for fields in hashes.values())
        assert stored > 0, f"{name}: nothing materialized"
    return got


def _assert_registered(settings: Settings, end: datetime) -> None:
    views = {v.name: v for v in open_store(settings).list_feature_views()}
    for name in VIEWS:
        assert views[name].most_recent_end_time == end, name
        assert views[name].materialization_intervals, name


@pytest.fixture
def record_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the batches the engine wrote (in this process)."""
    sizes: list[int] = []
    call = engine_module._RedisWriter.__call__

    def counting(self: engine_module._RedisWriter, table: pa.Table) -> int:
        sizes.append(table.num_rows)
        return call(self, table)

    monkeypatch.setattr(engine_module._RedisWriter, "__call__", counting)
    return sizes


def test_nightly_materialize_matches_feasts_engine(
    tmp_path: Path, redis_url: str, record_batches: list[int]
) -> None:
    feast, streaming = _repos(tmp_path, redis_url, key_ttl=True)
    client = redis.Redis.from_url(redis_url)
    try:
        # first load: every view in full up to MIDWAY (half the snapshots are later)
        for settings in (feast, streaming):
            done = materialize(open_store(settings), client, MIDWAY, EARLIEST)
            assert set(done) == set(VIEWS) and set(done.values()) == {"full"}
        assert record_batches and max(record_batches) <= BATCH_ROWS  # bounded batches
        assert len(record_batches) > 2 * len(VIEWS)
        before = _assert_same(feast, streaming)
        _assert_registered(streaming, MIDWAY)
        ttl = client.ttl(next(iter(client.scan_iter(match=f"*{streaming.feast_project}"))))
        assert 0 < ttl <= 86400  # EXPIRE as Feast's key_ttl_seconds

        # a push after the snapshots: the nightly load must not overwrite it (Feast's check)
        pushed = datetime.now(timezone.utc) - timedelta(seconds=30)
        for settings in (feast, streaming):
            push_recent_items(open_store(settings), "a_user0", ["b1", "b2"], when=pushed)
        end = datetime.now(timezone.utc) - timedelta(seconds=10)
        for settings in (feast, streaming):
            done = materialize(open_store(settings), client, end, EARLIEST)
            assert set(done.values()) == {"incremental"}
        after = _assert_same(feast, streaming)
        _assert_registered(streaming, end)
        users = _entities(streaming)["user_id"]
        recent = after[USER_RECENT_ITEMS]
        assert recent["recent_item_ids"][users.index("a_user0")] == ["b1", "b2"]
        newer = [
            b > a
            for a, b in zip(
                before[USER_ACTIVITY]["interactions_total__ts"],  # (seconds; 0: none)
                after[USER_ACTIVITY]["interactions_total__ts"],
                strict=True,
            )
            if a
        ]
        assert any(newer), "the incremental load brought nothing newer"
    finally:
        _teardown(feast, streaming)


def _feast_cli(settings: Settings, *args: str) -> tuple[str, str]:
    """The real `feast` CLI in the repo (as tests.support.repo.run_feast), logging at INFO;
    returns (stdout, stderr)."""
    env = {**os.environ, **feast_cli_env(settings)}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("feast")), "--log-level", "INFO", *args],
        cwd=settings.feature_repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def test_feast_cli_materialize_incremental_uses_the_engine(tmp_path: Path, redis_url: str) -> None:
    feast, streaming = _repos(tmp_path, redis_url)
    window = (EARLIEST.strftime("%Y-%m-%dT%H:%M:%S"), MIDWAY.strftime("%Y-%m-%dT%H:%M:%S"))
    end = (datetime.now(timezone.utc) - timedelta(seconds=5)).replace(microsecond=0)
    try:
        # the reference through Feast's Python API (what its CLI calls; one CLI start less)
        reference = open_store(feast)
        reference.materialize(EARLIEST, MIDWAY, feature_views=list(VIEWS))
        reference.materialize_incremental(end)
        views = [arg for name in VIEWS for arg in ("-v", name)]
        _feast_cli(streaming, "materialize", *window, *views)
        # everything, the list views too (their source holds no rows yet)
        out, err = _feast_cli(streaming, "materialize-incremental", end.isoformat())
        assert all(name in out for name in VIEWS)
        ours = [line for line in err.splitlines() if "recommender.featurestore.engine" in line]
        # the list views' source is a glob of local run folders: ours too, never Feast's
        # whole-table engine (which ran out of memory on 1M users' lists)
        assert not [line for line in ours if "Feast's local engine" in line], ours
        for name in VIEWS:  # the engine's summary line of each view, from the CLI's process
            assert any(f"{name}: " in line for line in ours), err[-2000:]
        _assert_same(feast, streaming)
        _assert_registered(streaming, end)
    finally:
        _teardown(feast, streaming)


def test_engine_config_is_validated(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(tmp_path, redis_url)
    path = settings.feature_repo / "feature_store.yaml"
    text = without_batch_engine(path.read_text())
    path.write_text(text + ENGINE_YAML.replace(f"{BATCH_ROWS}", "0"))
    store = open_store(settings)
    with pytest.raises(ValueError, match="batch_rows"):
        store._get_provider().batch_engine  # noqa: B018 - the engine is built on first use


def _extra_table(rng: np.random.Generator) -> pa.Table:
    """Several rows per user: equal event times told apart by the created time, nulls, NaN."""
    n = 600
    groups, numbers = rng.choice(["a", "b"], n), rng.integers(0, 35, n)
    users = [f"{g}_user{i}" for g, i in zip(groups, numbers, strict=True)]
    base = pd.Timestamp("2024-01-01", tz="UTC").value
    happened = base + rng.integers(0, 6, n) * 86_400 * 10**9 + rng.integers(0, 2, n) * 1000
    created = happened + rng.permutation(n) * 10**6  # distinct: no full ties
    score = rng.normal(size=n).astype(np.float32)
    counts = rng.integers(-5, 10**6, n)
    tags = [None if i % 7 == 0 else [f"t{j}" for j in range(i % 4)] for i in range(n)]
    null = rng.random(n) < 0.15
    return pa.table(
        {
            "uid": users,
            "raw_score": pa.array(np.where(rng.random(n) < 0.1, np.nan, score), mask=null),
            "count": pa.array(counts, mask=rng.random(n) < 0.15),
            "tags": pa.array(tags, pa.list_(pa.string())),
            "label": pa.array([f"l{i % 9}" for i in range(n)], mask=null),
            "happened_at": pa.array(happened, pa.timestamp("ns", "UTC")),
            "created_at": pa.array(created, pa.timestamp("ns", "UTC")),
        }
    )


def test_created_timestamps_mappings_and_the_generic_write_path(
    tmp_path: Path, redis_url: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    feast, streaming = _repos(tmp_path, redis_url, extra=_extra_table(rng))
    end = datetime(2024, 1, 5, tzinfo=timezone.utc)  # 4/6 of the rows; some exactly at the end
    try:
        for settings in (feast, streaming):
            open_store(settings).materialize(EARLIEST, end, feature_views=["extra_scores"])
        _assert_extra_same(feast, streaming)
        # the same rows through the online store's own write path (for a Redis Cluster, say)
        monkeypatch.setattr(engine_module, "RedisOnlineStore", type("NotRedis", (), {}))
        client = redis.Redis.from_url(redis_url)
        for settings in (feast, streaming):  # (only this view was written in these projects)
            for key in client.scan_iter(match=f"*{settings.feast_project}", count=1000):
                client.delete(key)
            open_store(settings).materialize(EARLIEST, end, feature_views=["extra_scores"])
        _assert_extra_same(feast, streaming)
    finally:
        _teardown(feast, streaming)


def _assert_extra_same(feast: Settings, streaming: Settings) -> None:
    features = [f"extra_scores:{f}" for f in ("score", "count", "tags", "label")]
    rows = [{"user_id": f"{g}_user{i}"} for g in "ab" for i in range(36)]
    got, expected = [
        open_store(s).get_online_features(features=features, entity_rows=rows).to_dict(True)
        for s in (streaming, feast)
    ]
    assert got == expected
    assert sum(v is not None for v in got["label"]) > 20
    assert _hashes(streaming) == _hashes(feast)


def test_a_load_over_its_memory_budget_fails_naming_batch_rows(
    tmp_path: Path, redis_url: str
) -> None:
    """Issue 14: a backfill that would exceed memory stops before it reads a row, with a
    message naming the setting to lower, instead of meeting the OOM killer."""
    settings = make_settings(tmp_path, redis_url)
    path = settings.feature_repo / "feature_store.yaml"
    budget = ENGINE_YAML.replace(f"{BATCH_ROWS}", "5000000") + "  memory_budget_mb: 64\n"
    path.write_text(without_batch_engine(path.read_text()) + budget)
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(3))), settings.data_dir)
    feast_apply(settings)
    store = open_store(settings)
    try:
        with pytest.raises(Exception, match="batch_engine.batch_rows in feature_store.yaml"):
            store.materialize(EARLIEST, MIDWAY, feature_views=[USER_ACTIVITY])
        assert store.get_feature_view(USER_ACTIVITY).most_recent_end_time is None
    finally:
        teardown_repo(settings)
