"""Append new interactions to the canonical tables without rebuilding them (an I/O edge).

The result equals :func:`~recommender.data.tables.build_tables` on the merged interactions,
in memory bounded by one record batch, the history of the users the new rows touch, and the
daily counts of the items they touch (items x days), never by the whole table:

* Snapshots are point-in-time (a row at day boundary ``t`` depends only on the entity's events
  before ``t``), so with ``cutoff`` = the first day boundary after the earliest new event, only
  rows at or after ``cutoff`` of the entities the new rows touch can change.
* ``interactions`` is copied batch by batch and the new rows appended; on that one pass the old
  rows of the touched users, the per-day counts of the touched items and every item's first
  interaction are collected.
* ``user_activity`` / ``user_recent_items`` / ``item_stats`` are copied batch by batch without
  the rows that can change, and the recomputed rows at or after ``cutoff`` are appended.
* ``items`` is rewritten (its validity time is each item's first interaction); ``users`` is
  left as it is, as a rebuild with the stored users table would leave it.

Rows already in the table (same user, item, rating and time) are not added again, so a run
killed before the event-log watermark moved can read the same events again. Every table is
written to a temporary file first; they replace the old ones only when all are complete, and
``interactions`` last, so a crash between two renames is repaired by running again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recommender.data.lists import ensure_table
from recommender.data.schema import canonical_interactions, canonical_items, check_references
from recommender.data.snapshots import (
    DAY,
    add_daily,
    daily_counts,
    recent_items_since,
    snapshots_since,
)
from recommender.data.tables import read_table
from recommender.featurestore import names

log = logging.getLogger(__name__)

BATCH_ROWS = 500_000
KEYS = ["user_id", "item_id", "rating", "event_timestamp"]
_DAY_NS = DAY.value
_TS_NS = pa.timestamp("ns", tz="UTC")


@dataclass(frozen=True)
class IngestCounts:
    """What an incremental ingest changed: new interaction rows (after deduplication), the
    table's size afterwards, and the users and items whose snapshots were recomputed."""

    new_rows: int
    total_rows: int
    users: int = 0
    items: int = 0
    cutoff: pd.Timestamp | None = None


@dataclass
class _Scan:
    """What one pass over the old interactions collects (all Arrow, compact)."""

    history: list[pa.Table] = field(default_factory=list)
    daily: list[pa.Table] = field(default_factory=list)
    first_seen: list[pa.Table] = field(default_factory=list)
    rows: int = 0


def _batches(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_rows):
        yield pa.Table.from_batches([batch], schema=pf.schema_arrow)


def _daily_arrow(table: pa.Table) -> pa.Table:
    """:func:`~recommender.data.snapshots.daily_counts` by item, in Arrow (``day`` as int ns)."""
    ns = table["event_timestamp"].cast(_TS_NS).cast(pa.int64()).to_numpy()
    day = (ns // _DAY_NS + 1) * _DAY_NS  # the boundary after the event's UTC day
    keyed = pa.table(
        {"item_id": table["item_id"], "day": day, "rating": table["rating"].cast(pa.float64())}
    )
    agg = keyed.group_by(["item_id", "day"]).aggregate(
        [("rating", "count", pc.CountOptions(mode="all")), ("rating", "sum")]
    )
    return agg.rename_columns(["item_id", "day", "n", "s"])


def _add_daily_arrow(parts: list[pa.Table]) -> pa.Table:
    agg = (
        pa.concat_tables(parts).group_by(["item_id", "day"]).aggregate([("n", "sum"), ("s", "sum")])
    )
    return agg.rename_columns(["item_id", "day", "n", "s"])


def _min_seen(parts: list[pa.Table]) -> pa.Table:
    agg = pa.concat_tables(parts).group_by("item_id").aggregate([("event_timestamp", "min")])
    return agg.rename_columns(["item_id", "event_timestamp"])


def _scan(
    path: Path, tmp: Path, users: pa.Array, items: pa.Array, batch_rows: int
) -> tuple[_Scan, pq.ParquetWriter]:
    """Copy the interactions to ``tmp`` (the writer stays open for the new rows) and collect
    the touched users' rows, the touched items' daily counts and every item's first event."""
    scan = _Scan()
    writer = pq.ParquetWriter(tmp, pq.read_schema(path))
    try:
        for table in _batches(path, batch_rows):
            writer.write_table(table)
            scan.rows += table.num_rows
            scan.history.append(table.filter(pc.is_in(table["user_id"], value_set=users)))
            mine = table.filter(pc.is_in(table["item_id"], value_set=items))
            scan.daily.append(_daily_arrow(mine.select(["item_id", "rating", "event_timestamp"])))
            scan.first_seen.append(_min_seen([table.select(["item_id", "event_timestamp"])]))
            if len(scan.daily) >= 8:  # keep the partial counts at about items x days
                scan.daily = [_add_daily_arrow(scan.daily)]
                scan.first_seen = [_min_seen(scan.first_seen)]
    except BaseException:
        writer.close()
        raise
    return scan, writer


def _fresh(new: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The new rows not already stored (nor repeated among themselves)."""
    new = new.drop_duplicates(KEYS)
    known = new.merge(history[KEYS].drop_duplicates(), on=KEYS, how="left", indicator=True)
    return new[(known["_merge"] == "left_only").to_numpy()].reset_index(drop=True)


def _to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False).cast(schema)


def _replace_rows(
    path: Path,
    tmp: Path,
    key: str,
    keys: pa.Array,
    cutoff: pd.Timestamp,
    rows: pd.DataFrame,
    batch_rows: int,
) -> int:
    """Copy ``path`` to ``tmp`` without the rows of ``keys`` at or after ``cutoff``, then
    append ``rows`` (their recomputed values); returns the row count written."""
    schema = pq.read_schema(path)
    when = pa.scalar(cutoff.value, _TS_NS).cast(schema.field("event_timestamp").type)
    count = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for table in _batches(path, batch_rows):
            stale = pc.and_(
                pc.is_in(table[key], value_set=keys),
                pc.greater_equal(table["event_timestamp"], when),
            )
            kept = table.filter(pc.invert(stale))
            writer.write_table(kept)
            count += kept.num_rows
        if len(rows):
            writer.write_table(_to_arrow(rows, schema))
            count += len(rows)
    return count


def _item_stats_rows(scan: _Scan, fresh: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    old = _add_daily_arrow(scan.daily)
    old = old.filter(
        pc.is_in(old["item_id"], value_set=pa.array(fresh["item_id"].unique()))
    ).to_pandas()
    old = old.assign(
        day=pd.to_datetime(old["day"].to_numpy(), unit="ns", utc=True),
        n=old["n"].astype("int64"),
        s=old["s"].astype("float32"),
    )
    daily = add_daily([old, daily_counts(fresh, "item_id")], "item_id")
    return snapshots_since(daily, "item_id", cutoff)


def _items_table(data_dir: Path, scan: _Scan, fresh: pd.DataFrame) -> pd.DataFrame:
    seen = _min_seen(scan.first_seen).to_pandas()
    seen["event_timestamp"] = pd.to_datetime(seen["event_timestamp"], utc=True)
    both = pd.concat([seen, fresh[["item_id", "event_timestamp"]]], ignore_index=True)
    stored = read_table(data_dir, "items")
    # parquet gives list columns back as numpy arrays, which canonical_items would read as text
    stored["genres"] = stored["genres"].map(lambda g: [] if g is None else list(g))
    return canonical_items(stored, both)


def append_interactions(
    new: pd.DataFrame, data_dir: Path, recent_n: int = 20, batch_rows: int = BATCH_ROWS
) -> IngestCounts:
    """Add raw interactions (``user_id, item_id[, rating], timestamp``) to the tables in
    ``data_dir``, updating every derived table as a full rebuild would.

    Example: ``append_interactions(events_to_interactions(events), settings.data_dir)``.
    """
    items = read_table(data_dir, "items", columns=["item_id"])
    new = canonical_interactions(new)
    check_references(new, items)
    path = data_dir / "interactions.parquet"
    if not path.exists():
        read_table(data_dir, "interactions", columns=["user_id"])  # the clear error
    per_entity = {names.USER_ACTIVITY: "user_id", names.USER_RECENT_ITEMS: "user_id"}
    per_entity[names.ITEM_STATS] = "item_id"
    tmp = {n: data_dir / f".{n}.parquet.tmp-{os.getpid()}" for n in ["items", *per_entity]}
    tmp["interactions"] = data_dir / f".interactions.parquet.tmp-{os.getpid()}"
    users_arr = pa.array(new["user_id"].unique(), pa.string())
    items_arr = pa.array(new["item_id"].unique(), pa.string())
    try:
        scan, writer = _scan(path, tmp["interactions"], users_arr, items_arr, batch_rows)
        with writer:
            history = pa.concat_tables(scan.history).to_pandas()
            fresh = _fresh(new, history)
            if fresh.empty:
                log.info("no new interactions (all %d already stored)", len(new))
                return IngestCounts(0, scan.rows)
            writer.write_table(_to_arrow(fresh, writer.schema))
        cutoff = fresh["event_timestamp"].min().floor("D") + DAY
        touched = fresh["user_id"].unique()
        mine = pd.concat([history[history["user_id"].isin(touched)], fresh], ignore_index=True)
        mine = canonical_interactions(mine)  # the full build's order (recent-items ties)
        recomputed = {  # the rows at or after cutoff
            names.USER_ACTIVITY: snapshots_since(daily_counts(mine, "user_id"), "user_id", cutoff),
            names.USER_RECENT_ITEMS: recent_items_since(mine, cutoff, n=recent_n),
            names.ITEM_STATS: _item_stats_rows(scan, fresh, cutoff),
        }
        del history, mine
        for name, key in per_entity.items():
            rows = recomputed.pop(name)
            keys = pa.array(fresh[key].unique(), pa.string())
            _replace_rows(
                data_dir / f"{name}.parquet", tmp[name], key, keys, cutoff, rows, batch_rows
            )
        item_table = _items_table(data_dir, scan, fresh)
        pq.write_table(pa.Table.from_pandas(item_table, preserve_index=False), tmp["items"])
        for name in [*per_entity, "items", "interactions"]:  # interactions last: see above
            os.replace(tmp[name], data_dir / f"{name}.parquet")
    finally:
        for p in tmp.values():
            p.unlink(missing_ok=True)
    ensure_table(data_dir)
    counts = IngestCounts(
        len(fresh), scan.rows + len(fresh), len(touched), fresh["item_id"].nunique(), cutoff
    )
    log.info("appended interactions incrementally: %s", counts)
    return counts
