"""A Feast compute engine that streams a feature view's parquet rows to Redis in bounded batches.

Feast's local engine reads a whole source through dask and converts each row to protobuf objects
in Python (586 s and 4-6 GB for the 200k-user nightly, OOM at 1M users). Named in
``feature_store.yaml``, this one serves ``feast materialize[-incremental]`` and the nightly job::

    batch_engine:
      type: recommender.featurestore.engine.StreamingEngine
      batch_rows: 50000     # rows read, encoded and written at a time (bounds the memory)

Per view: (1) each entity's latest row with a timestamp in ``[start, end]`` (both included, as
Feast's file store; ties: the created timestamp, then the last row in file order) is found from
the key and timestamp columns alone, read in record batches and reduced as they come (memory ~
2 x entities, not rows); (2) the winning rows are read again, whole now, row group by row group
(groups without one are skipped), ``batch_rows`` at a time; (3) each batch is encoded a column
at a time (:mod:`.encode`) and pipelined as ``RedisOnlineStore.online_write_batch`` does: HGET
of ``_ts:<view>`` first, writing only rows newer than the stored one (a later push stays;
``skip_dedup`` skips the read), then HSET of the timestamp and features, EXPIRE when
``key_ttl_seconds`` is set. Feast records the interval in the registry as for any engine.

Views this engine does not read (transformations, aggregations, offline writes, non-parquet
sources...) go to Feast's local engine, which it extends; an online store other than one Redis
(or a Sentinel master), e.g. a cluster, gets the streamed rows through its ``online_write_batch``.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import hiredis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from feast import FeatureView, utils
from feast.data_format import ParquetFormat
from feast.infra.common.materialization_job import MaterializationJobStatus, MaterializationTask
from feast.infra.compute_engines.local.compute import LocalComputeEngine
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import RedisOnlineStore, RedisType, _versioned_fv_name
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from feast.value_type import ValueType
from pyarrow.fs import LocalFileSystem
from pydantic import Field, StrictStr
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from recommender import membudget
from recommender.featurestore import encode

log = logging.getLogger(__name__)
_TS, _CREATED, _POS = "__ts", "__created", "__pos"


class StreamingEngineConfig(FeastConfigBaseModel):
    type: StrictStr = "recommender.featurestore.engine.StreamingEngine"
    batch_rows: int = Field(50_000, gt=0)
    """Rows read, encoded and written at a time."""
    pipeline_rows: int = Field(2_000, gt=0)
    """Rows whose commands go to Redis in one round trip."""
    memory_budget_mb: int | None = Field(None, gt=0)
    """Memory a view's load may plan to use; default 70% of what is available when it starts."""


@dataclass
class _Plan:
    view: FeatureView
    name: str  # the view's name in Redis (with its version when versioning is on)
    fs: Any
    files: list[str]
    keys: list[tuple[str, ValueType]]
    features: list[tuple[str, ValueType]]
    ts: str
    created: str | None
    columns: dict[str, str]  # Feast name -> column in the files (the source's field mapping)

    def read(self, batch: pa.RecordBatch, names: list[str]) -> dict[str, pa.Array]:
        return {n: batch.column(self.columns[n]) for n in names}


class StreamingEngine(LocalComputeEngine):
    def __init__(
        self, *, repo_config: RepoConfig, offline_store: Any, online_store: Any, **config: Any
    ) -> None:
        super().__init__(
            repo_config=repo_config, offline_store=offline_store, online_store=online_store
        )
        self.config = StreamingEngineConfig(**config)

    def _materialize_one(
        self, registry: BaseRegistry, task: MaterializationTask, **kwargs: Any
    ) -> LocalMaterializationJob:
        plan = self._plan(task)
        if plan is None:
            log.info("%s: materialized by Feast's local engine", task.feature_view.name)
            return super()._materialize_one(registry, task, **kwargs)
        job_id = f"{task.feature_view.name}-{task.start_time}-{task.end_time}"
        try:
            self._materialize(plan, task.start_time, task.end_time)
        except Exception as exc:  # noqa: BLE001 - Feast's provider raises the job's error
            return LocalMaterializationJob(job_id, MaterializationJobStatus.ERROR, error=exc)
        return LocalMaterializationJob(job_id, MaterializationJobStatus.SUCCEEDED)

    def _plan(self, task: MaterializationTask) -> _Plan | None:
        """What to read and write for the task's view, or None for Feast's local engine."""
        view, source = task.feature_view, task.feature_view.batch_source
        derived = any(
            getattr(view, attr, None)
            for attr in ("aggregations", "feature_transformation", "enable_validation", "filter")
        )
        if (
            derived
            or getattr(view, "source_views", None)
            or not task.only_latest
            or not view.online
            or getattr(view, "offline", False)
            or not isinstance(source, FileSource)
            or not isinstance(source.file_format or ParquetFormat(), ParquetFormat)
            or not view.entity_columns
        ):
            return None
        ts, created = source.timestamp_field, source.created_timestamp_column or None
        keys = [(f.name, f.dtype.to_value_type()) for f in view.entity_columns]
        features = [(f.name, f.dtype.to_value_type()) for f in view.features]
        reverse = {v: k for k, v in (source.field_mapping or {}).items()}
        names = [n for n, _ in keys + features] + [ts] + ([created] if created else [])
        uri = FileSource.get_uri_for_file_path(self.repo_config.repo_path, source.path)
        fs, path = FileSource.create_filesystem_and_path(
            uri, source.file_options.s3_endpoint_override, source.resolve_credentials()
        )
        if any(c in path for c in "*?["):  # a glob (the lists' run folders): local files only
            if fs is not None and not isinstance(fs, LocalFileSystem):  # None: Feast's local
                return None
            files = sorted(glob.glob(path, recursive=True))
        else:
            files = sorted(ds.dataset(path, filesystem=fs, format="parquet").files)
        stored_as = _versioned_fv_name(view, self.repo_config)
        if not files:  # nothing to load yet (e.g. no nightly run has published lists)
            return _Plan(view, stored_as, fs, [], keys, features, ts, created, {})
        schema = pq.read_schema(files[0], filesystem=fs)
        columns = {n: reverse.get(n, n) for n in names}
        for name in [ts] + ([created] if created else []):
            if columns[name] not in schema.names:
                return None
            if not pa.types.is_timestamp(schema.field(columns[name]).type):
                return None
        return _Plan(view, stored_as, fs, files, keys, features, ts, created, columns)

    def _materialize(self, plan: _Plan, start: datetime, end: datetime) -> None:
        t0 = time.perf_counter()
        if not plan.files:
            log.info("%s: its source has no files yet, nothing to load", plan.view.name)
            return
        membudget.check(
            _planned_mb(plan, self.config.batch_rows),
            self.config.memory_budget_mb,
            f"materializing {plan.view.name} {self.config.batch_rows} rows at a time",
            "batch_engine.batch_rows in feature_store.yaml",
        )
        winners = self._latest(plan, encode.instant_nanos(start), encode.instant_nanos(end))
        write, written = self._writer(plan), 0
        for table in self._rows(plan, winners):
            written += write(table)
        seconds, name = time.perf_counter() - t0, plan.view.name
        log.info("%s: %d entities in [%s, %s], %d newer ones written in %.1f s",
                 name, len(winners), start, end, written, seconds)  # fmt: skip

    def _batches(
        self, plan: _Plan, names: list[str], pick: np.ndarray | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(position of its first row, batch) over the files in order; with ``pick`` (sorted
        positions), only the row groups holding one of them."""
        columns, base = sorted({plan.columns[n] for n in names}), 0
        for path in plan.files:
            parquet = pq.ParquetFile(path, filesystem=plan.fs)
            meta = parquet.metadata
            if pick is None:
                spans = [(base, list(range(meta.num_row_groups)))]
            else:
                spans, first = [], base
                for group in range(meta.num_row_groups):
                    rows = meta.row_group(group).num_rows
                    lo, hi = np.searchsorted(pick, [first, first + rows])
                    if hi > lo:
                        spans.append((first, [group]))
                    first += rows
            for first, groups in spans:
                for batch in parquet.iter_batches(
                    self.config.batch_rows, row_groups=groups, columns=columns
                ):
                    yield first, batch
                    first += batch.num_rows
            base += meta.num_rows

    def _latest(self, plan: _Plan, start: int, end: int) -> np.ndarray:
        """Sorted positions of each entity's latest row in ``[start, end]``."""
        keys = [k for k, _ in plan.keys]
        order = [_TS] + ([_CREATED] if plan.created else []) + [_POS]
        names = keys + [plan.ts] + ([plan.created] if plan.created else [])
        held: list[pa.Table] = []
        count, limit = 0, 4 * self.config.batch_rows
        for first, batch in self._batches(plan, names):
            cols = plan.read(batch, names)
            ts, valid = encode.epoch_nanos(cols[plan.ts])
            inside = valid & (ts >= start) & (ts <= end)
            if not inside.any():
                continue
            mask = pa.array(inside)
            part = {k: cols[k].filter(mask) for k in keys}
            if any(part[k].null_count for k in keys):
                raise ValueError(f"{plan.view.name}: null join key values in the source")
            part[_TS] = pa.array(ts[inside])
            if plan.created:
                created, known = encode.epoch_nanos(cols[plan.created])
                part[_CREATED] = pa.array(np.where(known, created, np.iinfo(np.int64).min)[inside])
            part[_POS] = pa.array(np.flatnonzero(inside) + first)
            held.append(pa.table(part))
            count += len(part[_POS])
            if count >= limit:  # reduce as rows come: memory ~ 2 x entities
                held = [_last_per_key(held, keys, order)]
                count = held[0].num_rows
                limit = max(limit, 2 * count)
        if not held:
            return np.empty(0, np.int64)
        return np.sort(_last_per_key(held, keys, order)[_POS].to_numpy())

    def _rows(self, plan: _Plan, winners: np.ndarray) -> Iterator[pa.Table]:
        """The winning rows, ``batch_rows`` at a time, columns named as in Feast."""
        names = [n for n, _ in plan.keys + plan.features] + [plan.ts]
        names += [plan.created] if plan.created else []
        size, held, count = self.config.batch_rows, [], 0
        for first, batch in self._batches(plan, names, pick=winners):
            lo, hi = np.searchsorted(winners, [first, first + batch.num_rows])
            if lo == hi:
                continue
            taken = batch.take(pa.array(winners[lo:hi] - first))
            held.append(pa.table(plan.read(taken, names)))
            count += hi - lo
            while count >= size:
                table = pa.concat_tables(held, promote_options="permissive").combine_chunks()
                yield table.slice(0, size)
                held, count = [table.slice(size)], table.num_rows - size
        if count:
            yield pa.concat_tables(held, promote_options="permissive").combine_chunks()

    def _writer(self, plan: _Plan) -> Callable[[pa.Table], int]:
        store, config = self.online_store, self.repo_config.online_store
        if isinstance(store, RedisOnlineStore) and config.redis_type != RedisType.redis_cluster:
            return _RedisWriter(
                store._get_client(config), plan, self.repo_config, self.config.pipeline_rows
            )
        join_keys = dict(plan.keys)

        def write(table: pa.Table) -> int:  # the store's own write path (e.g. a cluster)
            rows = utils._convert_arrow_to_proto(table, plan.view, join_keys)
            store.online_write_batch(self.repo_config, plan.view, rows, None)
            return len(rows)

        return write


class _RedisWriter:
    """Feast's ``online_write_batch`` for Redis, a batch of rows at a time."""

    def __init__(self, client: Any, plan: _Plan, config: RepoConfig, pipeline_rows: int) -> None:
        online = config.online_store
        self.plan, self.pool, self.rows = plan, client.connection_pool, pipeline_rows
        self.project, self.version = config.project, config.entity_key_serialization_version
        self.ttl, self.dedup = online.key_ttl_seconds, not online.skip_dedup
        self.ts_field = f"_ts:{plan.name}".encode()
        self.fields = [_mmh3(f"{plan.name}:{name}") for name, _ in plan.features]

    def __call__(self, table: pa.Table) -> int:
        plan = self.plan
        names, types = [k for k, _ in plan.keys], [t for _, t in plan.keys]
        keys = encode.entity_keys(
            [table[k] for k in names], names, types, self.project, self.version
        )
        nanos, stamps = encode.timestamps(table[plan.ts])
        if self.dedup:  # as Feast: write only what is newer than the stored timestamp
            replies = self._send(encode.command(b"HGET", keys, self.ts_field), 1, keep=True)
            stored = encode.stored_nanos(replies)
            newer = (stored == 0) | (nanos > stored)
            if not newer.all():
                mask = pa.array(newer)
                table, keys, stamps = table.filter(mask), keys.filter(mask), stamps.filter(mask)
        if not len(keys):
            return 0
        args: list[encode.Part] = [b"HSET", keys, self.ts_field, stamps]
        for field, (name, vt) in zip(self.fields, plan.features, strict=True):
            args += [field, encode.values(table[name], vt)]
        commands, per_row = encode.command(*args), 1
        if self.ttl:
            expire = encode.command(b"EXPIRE", keys, str(self.ttl).encode())
            commands, per_row = encode.join(commands, expire), 2
        self._send(commands, per_row)
        return len(keys)

    def _send(self, commands: pa.Array, per_row: int, keep: bool = False) -> list[Any]:
        """Send the rows' commands ``self.rows`` rows per round trip; raise on an error reply;
        return the replies when ``keep``."""
        offsets, data = encode.buffers(commands)
        payload, replies, n = memoryview(data), [], len(offsets) - 1  # type: ignore[arg-type]
        conn = self.pool.get_connection()
        try:
            conn.connect()
            sock, reader = conn._sock, hiredis.Reader()
            for i in range(0, n, self.rows):
                j = min(i + self.rows, n)
                conn.send_packed_command([payload[offsets[i] : offsets[j]]], check_health=False)
                for _ in range((j - i) * per_row):
                    reply = reader.gets()
                    while reply is False:
                        chunk = sock.recv(1 << 20)
                        if not chunk:
                            raise RedisConnectionError("Redis closed the connection")
                        reader.feed(chunk)
                        reply = reader.gets()
                    if isinstance(reply, hiredis.ReplyError):
                        raise ResponseError(str(reply))
                    if keep:
                        replies.append(reply)
        except BaseException:
            conn.disconnect()  # replies may be left unread: never reuse this connection
            raise
        finally:
            self.pool.release(conn)
        return replies


def _planned_mb(plan: _Plan, batch_rows: int) -> float:
    """A view load's planned memory: ``batch_rows`` rows at their uncompressed size in the
    files (x4: the Arrow batch, its taken copy, the concatenation and the encoded commands),
    and the latest-row reduction's key columns for at most ``4 x batch_rows`` rows."""
    rows = size = 0
    for path in plan.files:
        meta = pq.ParquetFile(path, filesystem=plan.fs).metadata
        rows += meta.num_rows
        size += sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    per_row = size / rows if rows else 0
    return (batch_rows * per_row * 4 + 4 * batch_rows * 64) / 2**20


def _last_per_key(tables: list[pa.Table], keys: list[str], order: list[str]) -> pa.Table:
    """The last row of each key in ``order`` (ascending)."""
    table = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    table = table.take(pc.sort_indices(table, [(c, "ascending") for c in keys + order]))
    n = table.num_rows
    last = np.ones(n, bool)
    if n > 1:
        same = np.ones(n - 1, bool)
        for key in keys:
            column = table[key]
            equal = pc.equal(column.slice(0, n - 1), column.slice(1))
            same &= np.asarray(equal.to_numpy(zero_copy_only=False), dtype=bool)
        last[:-1] = ~same
    return table.filter(pa.array(last))
