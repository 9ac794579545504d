"""Synthetic user events for known users and items, written to the durable event log exactly
as ``POST /events`` writes them: "one day of new data" for benchmarks and scale tests of the
incremental nightly ingest. Reproducible from ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recommender.events.log import EventLog

# mostly implicit feedback, some explicit ratings (value 1..5), a few dislikes
EVENT_MIX = {
    "view": 0.5,
    "click": 0.2,
    "like": 0.1,
    "purchase": 0.05,
    "rating": 0.1,
    "dislike": 0.05,
}
_WRITE_BLOCK = 100_000


def synthetic_events(
    user_ids: Sequence[str] | np.ndarray,
    item_ids: Sequence[str] | np.ndarray,
    n_events: int,
    start: pd.Timestamp,
    end: pd.Timestamp,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """``n_events`` event-log records: random users and items from the given ids, times
    uniform in ``[start, end)``, types drawn from :data:`EVENT_MIX`.

    Example: ``synthetic_events(["u1"], ["i1"], 2, day, day + pd.Timedelta(days=1))``.
    """
    if not len(user_ids) or not len(item_ids):
        raise ValueError("synthetic events need at least one user and one item")
    rng = np.random.default_rng([seed, 2])
    users = np.asarray(user_ids)[rng.integers(0, len(user_ids), n_events)]
    items = np.asarray(item_ids)[rng.integers(0, len(item_ids), n_events)]
    types = rng.choice(list(EVENT_MIX), n_events, p=list(EVENT_MIX.values()))
    ratings = rng.integers(1, 6, n_events)
    span = (end - start).total_seconds()
    seconds = start.timestamp() + rng.uniform(0, span, n_events)
    times = pd.to_datetime(seconds, unit="s", utc=True).floor("us")  # JSON keeps microseconds
    ids = rng.integers(0, 2**63, n_events, dtype=np.int64)
    received = datetime.now(timezone.utc)
    return [
        {
            "event_id": f"syn{seed}-{ids[k]:x}-{k}",
            "user_id": str(users[k]),
            "item_id": str(items[k]),
            "event_type": str(types[k]),
            "value": float(ratings[k]) if types[k] == "rating" else None,
            "event_timestamp": times[k].to_pydatetime(),
            "received_at": received,
            "recommendation_id": None,
        }
        for k in range(n_events)
    ]


def write_synthetic_events(
    directory: Path,
    user_ids: Sequence[str] | np.ndarray,
    item_ids: Sequence[str] | np.ndarray,
    n_events: int,
    start: pd.Timestamp,
    end: pd.Timestamp,
    seed: int = 0,
) -> int:
    """Append :func:`synthetic_events` to the event log in ``directory``; returns how many."""
    records = synthetic_events(user_ids, item_ids, n_events, start, end, seed=seed)
    log = EventLog(directory, fsync=False)
    try:
        return sum(
            log.append(records[i : i + _WRITE_BLOCK]) for i in range(0, len(records), _WRITE_BLOCK)
        )
    finally:
        log.close()


def one_day_of_events(
    data_dir: Path, directory: Path, n_events: int, seed: int = 0
) -> tuple[int, pd.Timestamp]:
    """Write ``n_events`` events of the users and items in the tables of ``data_dir`` (a Feast
    repo's ``data``), timed on the UTC day after the latest stored interaction: what a day of
    ``POST /events`` leaves for the next ``reco nightly``. Returns (events written, that day).

    Example: ``one_day_of_events(settings.data_dir, settings.event_log_dir, 33_000)``.
    """
    users = pq.read_table(data_dir / "users.parquet", columns=["user_id"])["user_id"]
    items = pq.read_table(data_dir / "items.parquet", columns=["item_id"])["item_id"]
    latest = _latest_interaction(data_dir / "interactions.parquet")
    day = latest.floor("D") + pd.Timedelta(days=1)
    written = write_synthetic_events(
        directory,
        users.to_numpy(),
        items.to_numpy(),
        n_events,
        day,
        day + pd.Timedelta(days=1),
        seed=seed,
    )
    return written, day


def _latest_interaction(path: Path) -> pd.Timestamp:
    """The newest ``event_timestamp``, from the row-group statistics when they are there."""
    meta = pq.ParquetFile(path).metadata
    column = meta.schema.to_arrow_schema().get_field_index("event_timestamp")
    stats = [meta.row_group(g).column(column).statistics for g in range(meta.num_row_groups)]
    if stats and all(s is not None and s.has_min_max for s in stats):
        return _utc(max(s.max for s in stats))
    return _utc(pc.max(pq.read_table(path, columns=["event_timestamp"])["event_timestamp"]).as_py())


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
