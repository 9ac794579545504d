"""The ``reco`` command line: the main app, with every sub-app and top-level command added
here explicitly. Every command reads ``RECO_*`` settings; bad input exits 2 with one line."""

from __future__ import annotations

import typer

from jobs.cli import (
    data_app,
    experiments_app,
    items_app,
    lists_app,
    models_app,
    ops,
    pipeline,
)

app = typer.Typer(
    help="Feature-store-centric recommender platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app.app, name="data")
app.command()(pipeline.train)
app.command()(pipeline.nightly)
app.command()(pipeline.schedule)
app.command()(ops.healthcheck)
app.add_typer(lists_app.app, name="lists")
app.command()(pipeline.evaluate)
app.add_typer(items_app.app, name="items")
app.command()(ops.serve)
app.command("feast-env")(ops.feast_env)
app.add_typer(models_app.app, name="models")
app.add_typer(experiments_app.app, name="experiments")
app.command("monitor")(pipeline.monitor_cmd)
