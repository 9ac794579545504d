"""`reco lists ...`: the nightly lists' publication."""

from __future__ import annotations

import json

import typer

from jobs.cli.common import clean_errors, load_settings
from recommender.batch.publication import history, read_live
from recommender.featurestore.names import precomputed_service
from recommender.featurestore.repo import redis_client

app = typer.Typer(help="The nightly lists' publication.", no_args_is_help=True)


@app.command("live")
@clean_errors
def lists_live() -> None:
    """Which list slot APIs serve, the run that filled it, and the recent publications."""
    settings = load_settings()
    client = redis_client(settings, timeout=5)
    try:
        live, published = (
            read_live(client, settings.feast_project),
            history(client, settings.feast_project),
        )
    finally:
        client.close()
    where = {"view": live.view, "feature_service": precomputed_service(live.slot)} if live else {}
    out = {"live": vars(live) | where if live else None, "history": [vars(p) for p in published]}
    typer.echo(json.dumps(out))
