"""The offline side of the nightly lists: ``data/user_recommendations/<run_id>/*.parquet``.

Each chunk of a run is written to ``data/staging/user_recommendations/<run_id>/`` as soon as it
is scored; publication renames the run's folder into ``data/user_recommendations/``, which is
the Feast ``FileSource`` of both list views. Feast's point-in-time joins therefore see exactly
the published runs, one folder each, and old runs are pruned by folder.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recommender.featurestore.names import LISTS_TABLE

log = logging.getLogger(__name__)
TABLE = LISTS_TABLE
EMPTY = "empty.parquet"
# The lists' offline schema (both list views read it).
RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rec_item_ids", pa.list_(pa.string())),
        ("rec_scores", pa.list_(pa.float32())),
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("rec_sources", pa.list_(pa.int32())),
        ("rec_source_names", pa.string()),
        ("event_timestamp", pa.timestamp("ns", tz="UTC")),
    ]
)


def lists_table(
    user_ids: np.ndarray,
    rows: np.ndarray,
    scores: np.ndarray,
    item_ids: np.ndarray,
    model_version: str,
    run_id: str,
    timestamp: datetime,
    sources: np.ndarray | None = None,
    source_names: Sequence[str] = ("als",),
) -> pa.Table:
    """One chunk's lists as an Arrow table with :data:`RECOMMENDATIONS_SCHEMA` (padding
    ``-1`` rows are dropped). ``sources``: per item, the bit mask of the ``source_names``
    that proposed it; without it every list's masks are empty (all from the one source)."""
    valid = rows >= 0
    offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32)
    masks = (
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(sources[valid].astype(np.int32)))
        if sources is not None
        else _no_masks(len(user_ids))
    )
    names = pa.DictionaryArray.from_arrays(
        pa.array(rows[valid].astype(np.int32)), pa.array(item_ids.astype(str))
    ).cast(pa.string())
    n = len(user_ids)
    return pa.table(
        {
            "user_id": pa.array(np.asarray(user_ids).astype(str)),
            "rec_item_ids": pa.ListArray.from_arrays(pa.array(offsets), names),
            "rec_scores": pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(scores[valid].astype(np.float32))
            ),
            "model_version": pa.array([model_version] * n),
            "run_id": pa.array([run_id] * n),
            "rec_sources": masks,
            "rec_source_names": pa.array([",".join(source_names)] * n),
            "event_timestamp": pa.array([timestamp] * n, pa.timestamp("ns", tz="UTC")),
        },
        schema=RECOMMENDATIONS_SCHEMA,
    )


def split_source_names(stored: object) -> list[str]:
    """A stored list's ``rec_source_names`` (comma-separated; empty or missing: none)."""
    return [name for name in str(stored or "").split(",") if name]


def _no_masks(n: int) -> pa.ListArray:
    """``n`` empty source-mask lists."""
    return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.int32()))


def published_dir(data_dir: Path) -> Path:
    return data_dir / TABLE


def staging_dir(data_dir: Path, run_id: str) -> Path:
    return data_dir / "staging" / TABLE / run_id


def ensure_table(data_dir: Path) -> None:
    """An empty file with the schema, so Feast can read the table before the first run, and
    every published part in the current schema (:func:`upgrade_parts`)."""
    folder = published_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / EMPTY).exists():
        tmp = folder / f".{EMPTY}.tmp-{os.getpid()}"
        pq.write_table(RECOMMENDATIONS_SCHEMA.empty_table(), tmp)
        os.replace(tmp, folder / EMPTY)
    upgrade_parts(data_dir)


def upgrade_parts(data_dir: Path) -> list[Path]:
    """Rewrite the published parts written before the source columns existed, with empty
    masks and no source names ("not recorded"), so that every reader of the glob (Feast's
    offline store, the materialization engine, the monitor) sees one schema. Reads only the
    footers of parts already current; returns the parts rewritten."""
    done = []
    for path in sorted(published_dir(data_dir).rglob("*.parquet")):
        schema = pq.read_schema(path)
        if schema.names == RECOMMENDATIONS_SCHEMA.names:
            continue
        table = pq.read_table(path)
        n = table.num_rows
        extra = {"rec_sources": _no_masks(n), "rec_source_names": pa.array([""] * n, pa.string())}
        columns = [
            table[name] if name in table.column_names else extra[name]
            for name in RECOMMENDATIONS_SCHEMA.names
        ]
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        pq.write_table(pa.table(columns, schema=RECOMMENDATIONS_SCHEMA), tmp)
        os.replace(tmp, path)
        done.append(path)
    if done:
        log.info("added the source columns to %d published list parts", len(done))
    return done


def write_part(table: pa.Table, data_dir: Path, run_id: str, chunk: int) -> Path:
    """Write one chunk's lists into the run's staging folder (atomic per file)."""
    folder = staging_dir(data_dir, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{chunk:05d}.parquet"
    tmp = folder / f".part-{chunk:05d}.tmp-{os.getpid()}"
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def publish_parts(data_dir: Path, run_id: str) -> Path:
    """Move the run's staged parts into the published table (idempotent: a rerun after a
    kill between this and the pointer switch finds it done)."""
    target = published_dir(data_dir) / run_id
    source = staging_dir(data_dir, run_id)
    if target.exists():
        return target
    ensure_table(data_dir)
    if not source.exists():
        raise FileNotFoundError(f"{source}: the run's staged lists are missing")
    os.replace(source, target)
    return target


def prune_runs(data_dir: Path, keep: int, protect: set[str]) -> list[str]:
    """Delete published run folders beyond the newest ``keep`` (run ids sort by time) and
    staging folders of runs that are not ``protect``-ed; returns the deleted run ids."""
    deleted = []
    runs = sorted(p for p in published_dir(data_dir).iterdir() if p.is_dir())
    for path in runs[: max(0, len(runs) - keep)]:
        if path.name not in protect:
            shutil.rmtree(path)
            deleted.append(path.name)
    staging = data_dir / "staging" / TABLE
    if staging.exists():
        for path in staging.iterdir():
            if path.name not in protect:
                shutil.rmtree(path)
                deleted.append(path.name)
    return deleted
