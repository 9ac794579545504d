"""`reco items ...`: catalog operations."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from jobs.cli.common import clean_errors, load_settings
from recommender.pipeline.catalog import set_availability

app = typer.Typer(help="Catalog operations.", no_args_is_help=True)


@app.command("availability")
@clean_errors
def items_availability(
    item_ids: Annotated[list[str], typer.Argument(help="Item ids to change.")],
    available: Annotated[
        bool, typer.Option("--available/--unavailable", help="Recommendable or not.")
    ] = False,
) -> None:
    """Mark items unavailable (never recommended) or available again, offline and online."""
    changed = set_availability(load_settings(), item_ids, available)
    typer.echo(json.dumps({"changed": changed, "available": available}))
