"""Build the canonical and derived tables, and read/write them as parquet (the I/O edge).

Writes are all-or-nothing per call: every table is validated and serialised to a temporary
file first, and only then are the files renamed into place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

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
    activity_snapshots,
    add_daily,
    daily_counts,
    recent_items_snapshots,
    recent_items_table,
    snapshots_from_daily,
)
from recommender.errors import InvalidDataset
from recommender.featurestore import names

log = logging.getLogger(__name__)
_MERGE_DAILY = 8  # blocks' per-day item counts held before they are summed into one table


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


def write_tables_chunked(
    items: pd.DataFrame,
    chunks: Iterable[tuple[pd.DataFrame, pd.DataFrame]],
    data_dir: Path,
    recent_n: int = 20,
) -> dict[str, int]:
    """:func:`build_tables` + :func:`write_tables` for data that arrives in disjoint blocks of
    users (raw ``(interactions, users)`` per block), in memory bounded by one block: the
    per-user tables are appended block by block as parquet row groups; the per-item ones
    (``items``, ``item_stats``) are built at the end from per-day counts that add up exactly.
    All tables replace the old ones only once every one is complete."""
    data_dir.mkdir(parents=True, exist_ok=True)
    per_user = ("interactions", "users", names.USER_ACTIVITY, names.USER_RECENT_ITEMS)
    tmp = {n: data_dir / f".{n}.parquet.tmp-{os.getpid()}" for n in per_user}
    writers: dict[str, pq.ParquetWriter] = {}
    counts = dict.fromkeys(per_user, 0)
    known_items = pd.DataFrame({"item_id": items["item_id"].astype(str)})
    daily: list[pd.DataFrame] = []
    first_seen: list[pd.Series] = []
    try:
        for raw_inter, raw_users in chunks:
            inter = canonical_interactions(raw_inter)
            check_references(inter, known_items)
            parts = {
                "interactions": inter,
                "users": canonical_users(raw_users, inter),
                names.USER_ACTIVITY: activity_snapshots(inter, "user_id"),
                names.USER_RECENT_ITEMS: recent_items_table(inter, n=recent_n),
            }
            for name, frame in parts.items():
                table = (
                    frame
                    if isinstance(frame, pa.Table)
                    else pa.Table.from_pandas(frame, preserve_index=False)
                )
                if name not in writers:
                    writers[name] = pq.ParquetWriter(tmp[name], table.schema)
                writers[name].write_table(table.cast(writers[name].schema))
                counts[name] += table.num_rows
            daily.append(daily_counts(inter, "item_id"))
            if len(daily) >= _MERGE_DAILY:  # folding in every block re-summed the whole table
                daily = [add_daily(daily, "item_id")]  # each time: a quarter of the 1M run

            first_seen.append(inter.groupby("item_id")["event_timestamp"].min())
            log.info("wrote a block of %d users (%d interactions)", len(parts["users"]), len(inter))
        if not writers:
            raise InvalidDataset("interactions: the table has no rows")
        for writer in writers.values():
            writer.close()
        seen = pd.concat(first_seen).groupby(level=0).min()
        item_tables = {
            "items": canonical_items(
                items, pd.DataFrame({"item_id": seen.index, "event_timestamp": seen.to_numpy()})
            ),
            names.ITEM_STATS: snapshots_from_daily(add_daily(daily, "item_id"), "item_id"),
        }
        arrow = {n: pa.Table.from_pandas(df, preserve_index=False) for n, df in item_tables.items()}
        _write_atomic(arrow, data_dir)
        counts.update({n: t.num_rows for n, t in arrow.items()})
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


def read_table(data_dir: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one canonical table (optionally only ``columns``), with a clear error when
    ingest has not run."""
    path = data_dir / f"{name}.parquet"
    if not path.exists():
        raise InvalidDataset(
            f"{path} does not exist; run `reco data fetch` (or `reco data ingest`)"
        )
    return pd.read_parquet(path, columns=columns)
