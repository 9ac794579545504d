"""Build the canonical and derived tables, and read/write them as parquet (the I/O edge).

Writes are all-or-nothing per call: every table is validated and serialised to a temporary
file first, and only then are the files renamed into place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recommender.data.lists import ensure_table
from recommender.data.schema import (
    canonical_interactions,
    canonical_items,
    canonical_users,
    check_references,
)
from recommender.data.snapshots import (
    DAY,
    DailyCounts,
    activity_snapshots,
    add_daily_by_code,
    daily_by_code,
    days_after,
    recent_items_snapshots,
    recent_items_table,
    snapshots_from_daily,
)
from recommender.errors import InvalidDataset
from recommender.featurestore import names

log = logging.getLogger(__name__)
_MERGE_DAILY = 8  # blocks' per-day item counts held before they are summed into one table
_NEVER = np.iinfo(np.int64).max  # "no event" in the first-seen times
_ITEM_STATS_PART_ROWS = 1_000_000  # daily item rows turned into snapshots at a time


def build_tables(
    interactions: pd.DataFrame,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    recent_n: int = 20,
) -> dict[str, pd.DataFrame]:
    """Canonical tables plus the point-in-time feature tables Feast serves.

    Example: ``build_tables(raw)["user_activity"]`` holds daily snapshots per user.
    """
    inter = canonical_interactions(interactions)
    item_table = canonical_items(items, inter)
    if items is not None:
        check_references(inter, item_table)
    user_table = canonical_users(users, inter)
    return {
        "interactions": inter,
        "users": user_table,
        "items": item_table,
        names.USER_ACTIVITY: activity_snapshots(inter, "user_id"),
        names.ITEM_STATS: activity_snapshots(inter, "item_id"),
        names.USER_RECENT_ITEMS: recent_items_snapshots(inter, n=recent_n),
    }


def read_input(path: Path) -> pd.DataFrame:
    """Read a user-supplied CSV or parquet file."""
    if not path.exists():
        raise InvalidDataset(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise InvalidDataset(f"{path}: cannot be read ({exc})") from exc
    raise InvalidDataset(f"{path}: expected a .csv, .tsv or .parquet file")


def _write_atomic(tables: dict[str, pa.Table], data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp_paths: dict[str, Path] = {}
    try:
        for name, table in tables.items():
            tmp = data_dir / f".{name}.parquet.tmp-{os.getpid()}"
            pq.write_table(table, tmp)
            tmp_paths[name] = tmp
        for name, tmp in tmp_paths.items():
            os.replace(tmp, data_dir / f"{name}.parquet")
    finally:
        for tmp in tmp_paths.values():
            tmp.unlink(missing_ok=True)


def write_tables(tables: dict[str, pd.DataFrame], data_dir: Path) -> dict[str, int]:
    """Write every table to ``data_dir/<name>.parquet``; returns row counts."""
    arrow = {name: pa.Table.from_pandas(df, preserve_index=False) for name, df in tables.items()}
    _write_atomic(arrow, data_dir)
    ensure_table(data_dir)
    counts = {name: t.num_rows for name, t in arrow.items()}
    log.info("wrote tables to %s: %s", data_dir, counts)
    return counts


@dataclass(frozen=True)
class BlockTables:
    """One block of users' share of every table (:func:`block_tables`, possibly built in a
    helper process): the per-user tables whole, the per-item ones as parts that add up."""

    per_user: dict[str, pa.Table]
    daily: DailyCounts  # item codes (positions in the sorted item ids) and days
    first_seen: np.ndarray  # per item code: the block's first event (ns), or _NEVER


def item_vocabulary(items: pd.DataFrame) -> np.ndarray:
    """The sorted distinct item ids: the codes of :class:`BlockTables` are positions in it."""
    return np.sort(items["item_id"].astype(str).unique()).astype(object)


def block_tables(
    raw_interactions: pd.DataFrame,
    raw_users: pd.DataFrame,
    item_ids: np.ndarray,
    recent_n: int = 20,
) -> BlockTables:
    """A block's tables from its raw ``(interactions, users)``; every interacted item must be
    in ``item_ids`` (:func:`item_vocabulary`)."""
    inter = canonical_interactions(raw_interactions)
    codes = pd.Index(item_ids).get_indexer(inter["item_id"])
    if (codes < 0).any():
        check_references(inter, pd.DataFrame({"item_id": item_ids}))  # raises, with the ids
    parts = {
        "interactions": inter,
        "users": canonical_users(raw_users, inter),
        names.USER_ACTIVITY: activity_snapshots(inter, "user_id"),
        names.USER_RECENT_ITEMS: recent_items_table(inter, n=recent_n),
    }
    ts = pd.DatetimeIndex(inter["event_timestamp"]).asi8
    seen, first = np.unique(codes, return_index=True)
    first_seen = np.full(len(item_ids), _NEVER, dtype=np.int64)
    first_seen[seen] = ts[first]
    return BlockTables(
        per_user={
            name: frame
            if isinstance(frame, pa.Table)
            else pa.Table.from_pandas(frame, preserve_index=False)
            for name, frame in parts.items()
        },
        daily=daily_by_code(codes, days_after(ts), inter["rating"].to_numpy(np.float64)),
        first_seen=first_seen,
    )


def _add_blocks_daily(parts: list[DailyCounts]) -> DailyCounts:
    return add_daily_by_code(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _item_stats_parts(
    daily: DailyCounts, item_ids: np.ndarray, rows: int = _ITEM_STATS_PART_ROWS
) -> Iterator[pa.Table]:
    """The ``item_stats`` snapshots of the summed daily counts, a part of about ``rows`` daily
    rows (whole items) at a time: the table is items x days, so memory stays bounded."""
    starts = np.flatnonzero(np.r_[True, daily.code[1:] != daily.code[:-1]])
    first = np.searchsorted(starts, np.arange(0, len(daily.code), rows))  # an item's first row
    cuts = np.unique(np.r_[starts[first[first < len(starts)]], len(daily.code)])
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        part = pd.DataFrame(
            {
                "item_id": item_ids[daily.code[a:b]],
                "day": pd.to_datetime(daily.day[a:b] * DAY.value, utc=True),
                "n": daily.n[a:b],
                "s": daily.s[a:b],
            }
        )
        frame = snapshots_from_daily(part, "item_id")
        yield pa.Table.from_pandas(frame, preserve_index=False)


def write_tables_chunked(
    items: pd.DataFrame,
    chunks: Iterable[tuple[pd.DataFrame, pd.DataFrame]],
    data_dir: Path,
    recent_n: int = 20,
) -> dict[str, int]:
    """:func:`write_blocks` of raw ``(interactions, users)`` blocks built in this process."""
    item_ids = item_vocabulary(items)
    blocks = (block_tables(inter, users, item_ids, recent_n) for inter, users in chunks)
    return write_blocks(items, blocks, data_dir)


def write_blocks(
    items: pd.DataFrame, blocks: Iterable[BlockTables], data_dir: Path
) -> dict[str, int]:
    """:func:`build_tables` + :func:`write_tables` for data that arrives in disjoint blocks of
    users, in memory bounded by one block: the per-user tables are appended block by block as
    parquet row groups; the per-item ones (``items``, ``item_stats``) are built at the end from
    per-day counts that add up exactly. All tables replace the old ones only once every one
    is complete."""
    data_dir.mkdir(parents=True, exist_ok=True)
    item_ids = item_vocabulary(items)
    writers: dict[str, pq.ParquetWriter] = {}
    tmp: dict[str, Path] = {}
    counts: dict[str, int] = {}

    def append(name: str, table: pa.Table) -> None:
        if name not in writers:
            tmp[name] = data_dir / f".{name}.parquet.tmp-{os.getpid()}"
            writers[name] = pq.ParquetWriter(tmp[name], table.schema)
            counts[name] = 0
        writers[name].write_table(table.cast(writers[name].schema))
        counts[name] += table.num_rows

    daily: list[DailyCounts] = []
    first_seen = np.full(len(item_ids), _NEVER, dtype=np.int64)
    try:
        for block in blocks:
            for name, table in block.per_user.items():
                append(name, table)
            daily.append(block.daily)
            if len(daily) >= _MERGE_DAILY:  # folding in every block re-summed the whole table
                daily = [_add_blocks_daily(daily)]  # each time: a quarter of the 1M run
            np.minimum(first_seen, block.first_seen, out=first_seen)
            log.info(
                "wrote a block of %d users (%d interactions)",
                block.per_user["users"].num_rows,
                block.per_user["interactions"].num_rows,
            )
        if not writers:
            raise InvalidDataset("interactions: the table has no rows")
        seen = first_seen != _NEVER
        first = pd.to_datetime(first_seen[seen], utc=True)
        items_table = canonical_items(
            items, pd.DataFrame({"item_id": item_ids[seen], "event_timestamp": first})
        )
        append("items", pa.Table.from_pandas(items_table, preserve_index=False))
        for table in _item_stats_parts(_add_blocks_daily(daily), item_ids):
            append(names.ITEM_STATS, table)
        for writer in writers.values():
            writer.close()
        for name, path in tmp.items():
            os.replace(path, data_dir / f"{name}.parquet")
    finally:
        for writer in writers.values():
            writer.close()
        for path in tmp.values():
            path.unlink(missing_ok=True)
    ensure_table(data_dir)
    log.info("wrote tables to %s: %s", data_dir, counts)
    return counts


def table_path(data_dir: Path, name: str) -> Path:
    """One canonical table's file, with a clear error when ingest has not run."""
    path = data_dir / f"{name}.parquet"
    if not path.exists():
        raise InvalidDataset(
            f"{path} does not exist; run `reco data fetch` (or `reco data ingest`)"
        )
    return path


def read_table(data_dir: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one canonical table (optionally only ``columns``)."""
    return pd.read_parquet(table_path(data_dir, name), columns=columns)
