"""`reco lists ...`: the nightly lists' publication."""

from __future__ import annotations

import json

import typer

from jobs.cli.common import clean_errors, load_settings
from recommender.contract.published import history, read_live
from recommender.featurestore.names import precomputed_service
from recommender.featurestore.redisclient import migrate_legacy_keys
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


@app.command("migrate-keys")
@clean_errors
def lists_migrate_keys() -> None:
    """Once after upgrading from a version without hash-tagged keys: move the project's Redis
    keys (pointer, history, slot owners, serving configuration, catalog version,
    materialization record, monitor summary) from reco:<project>:* to reco:{<project>}:*."""
    settings = load_settings()
    client = redis_client(settings, timeout=30)
    try:
        moved = migrate_legacy_keys(client, settings.feast_project)
    finally:
        client.close()
    typer.echo(json.dumps({"project": settings.feast_project, "moved": moved}))
