"""`reco experiments ...`: A/B experiments, canary ramps and shadow runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jobs.cli.common import clean_errors, echo_json, load_settings
from recommender.lifecycle.experiment_ops import (
    list_experiments,
    parse_variant,
    ramp,
    read_config,
    report,
    running,
    set_shadow,
    start,
    stop,
)
from recommender.lifecycle.experiments import CANARY_STEPS, Variant, canary_step
from recommender.lifecycle.reports import experiment_markdown, write_experiment_report
from recommender.training.registry import resolve

app = typer.Typer(help="A/B experiments, canary ramps and shadow runs.", no_args_is_help=True)


@app.command("start")
@clean_errors
def experiments_start(
    name: str,
    variant: Annotated[
        list[str],
        typer.Option(
            help="name=version:weight[:realtime], control first; version 'live' = production."
        ),
    ],
) -> None:
    """Start an experiment: users are assigned stickily to variants by weight."""
    echo_json(start(load_settings(), name, [parse_variant(v) for v in variant]).to_dict())


@app.command("canary")
@clean_errors
def experiments_canary(
    name: str,
    candidate: Annotated[str, typer.Option(help="The candidate model version.")],
) -> None:
    """Start a canary: production as control, CANDIDATE at 5% (ramp with `ramp --next`)."""
    settings = load_settings()
    version = resolve(settings.artifacts_dir, candidate)
    step = CANARY_STEPS[1]
    variants = [Variant("control", 100 - step), Variant("canary", step, version)]
    echo_json(start(settings, name, variants).to_dict())


@app.command("ramp")
@clean_errors
def experiments_ramp(
    name: str,
    variant: Annotated[str, typer.Option(help="The variant to re-weight.")] = "canary",
    weight: Annotated[float | None, typer.Option(help="Its new percent.")] = None,
    next_step: Annotated[
        bool, typer.Option("--next", help="Next canary step: 5, 25, 50, 100.")
    ] = False,
    back: Annotated[bool, typer.Option("--back", help="Previous canary step (down to 0).")] = False,
) -> None:
    """Change a variant's weight; the others share the rest in proportion."""
    settings = load_settings()
    if sum([weight is not None, next_step, back]) != 1:
        raise typer.BadParameter("give exactly one of --weight, --next, --back")
    if weight is None:
        current = running(settings, name)[1].variant(variant).weight
        weight = canary_step(current, 1 if next_step else -1)
    echo_json(ramp(settings, name, variant, weight).to_dict())


@app.command("stop")
@clean_errors
def experiments_stop(name: str) -> None:
    """Stop assigning: everyone gets production again. The logs and report stay."""
    echo_json(stop(load_settings(), name).to_dict())


@app.command("list")
@clean_errors
def experiments_list() -> None:
    """Every experiment on record, and the live serving configuration."""
    settings = load_settings()
    config = json.loads(read_config(settings).to_json())
    echo_json({"serving": config, "experiments": [e.to_dict() for e in list_experiments(settings)]})


@app.command("shadow")
@clean_errors
def experiments_shadow(
    version: Annotated[
        str | None, typer.Argument(help="Candidate version; omit with --off.")
    ] = None,
    sample: Annotated[float, typer.Option(help="Share of requests scored in shadow.")] = 0.1,
    off: Annotated[bool, typer.Option("--off", help="Stop the shadow run.")] = False,
) -> None:
    """Score a sample of requests with a candidate off the request path; APIs log overlap
    with the live list and the candidate's latency (/metrics, the shadow log)."""
    if off == (version is not None):
        raise typer.BadParameter("give a VERSION or --off")
    echo_json(json.loads(set_shadow(load_settings(), None if off else version, sample).to_json()))


@app.command("report")
@clean_errors
def experiments_report(
    name: str,
    out: Annotated[Path | None, typer.Option(help="Default: reports/experiments/<name>")] = None,
) -> None:
    """Per-variant exposures, click-through and conversion with confidence intervals and a
    test against the control (statsmodels), as report.md, report.json and ctr.png."""
    result = report(load_settings(), name)
    paths = write_experiment_report(result, out or Path("reports") / "experiments" / name)
    typer.echo(experiment_markdown(result))
    typer.echo("written: " + ", ".join(str(p) for p in paths))
