"""``reco models``, ``reco experiments`` and ``reco monitor``: the model lifecycle commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jobs.cli import _clean_errors, _settings, app

models_app = typer.Typer(
    help="Model versions: list, show, promote, roll back.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
experiments_app = typer.Typer(
    help="A/B experiments, canary ramps and shadow runs.", no_args_is_help=True
)
app.add_typer(experiments_app, name="experiments")


def _echo(data: object) -> None:
    typer.echo(json.dumps(data, indent=1, default=str))


@models_app.command("list")
@_clean_errors
def models_list() -> None:
    """Every version, newest first, with status and offline metrics."""
    from recommender.registry import list_versions

    rows = [v.summary() for v in list_versions(_settings().artifacts_dir)]
    for r in rows:
        ndcg = f"{r['ndcg@10']:.4f}" if r["ndcg@10"] is not None else "-"
        typer.echo(f"{r['version']}  {r['status']:<10}  ndcg@10={ndcg}  data to {r['last_event']}")
    if not rows:
        typer.echo("no model versions yet; run `reco nightly --retrain`")


@models_app.command("show")
@_clean_errors
def models_show(
    version: Annotated[str, typer.Argument(help="A version, or 'production'.")],
) -> None:
    """A version's manifest, status and journal entries."""
    from recommender.registry import get, resolve

    root = _settings().artifacts_dir
    v = get(root, resolve(root, version))
    manifest = {k: val for k, val in v.manifest.items() if k != "files"}
    _echo({"version": v.version, "status": v.status, "history": v.history, "manifest": manifest})


@models_app.command("promote")
@_clean_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="The candidate version to make production.")],
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses.")] = False,
    reason: Annotated[str, typer.Option(help="Recorded in the registry journal.")] = "",
) -> None:
    """Check the promotion gate, score every user with VERSION and publish its lists with
    it (one atomic switch; APIs swap models without a restart)."""
    from jobs.lifecycle import promote

    _echo(promote(_settings(), version, force=force, reason=reason))


@models_app.command("rollback")
@_clean_errors
def models_rollback(
    to: Annotated[
        str | None, typer.Option(help="Default: the previous production version.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Recorded in the registry journal.")] = "",
) -> None:
    """Back to the previous production model and its lists: a pointer switch when its list
    slot is intact, else a rescoring run."""
    from jobs.lifecycle import rollback

    _echo(rollback(_settings(), to=to, reason=reason))


@experiments_app.command("start")
@_clean_errors
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
    from jobs.experiments import parse_variant, start

    _echo(start(_settings(), name, [parse_variant(v) for v in variant]).to_dict())


@experiments_app.command("canary")
@_clean_errors
def experiments_canary(
    name: str,
    candidate: Annotated[str, typer.Option(help="The candidate model version.")],
) -> None:
    """Start a canary: production as control, CANDIDATE at 5% (ramp with `ramp --next`)."""
    from jobs.experiments import start
    from recommender.experiments import CANARY_STEPS, Variant
    from recommender.registry import resolve

    settings = _settings()
    version = resolve(settings.artifacts_dir, candidate)
    step = CANARY_STEPS[1]
    variants = [Variant("control", 100 - step), Variant("canary", step, version)]
    _echo(start(settings, name, variants).to_dict())


@experiments_app.command("ramp")
@_clean_errors
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
    from jobs.experiments import ramp, running
    from recommender.experiments import canary_step

    settings = _settings()
    if sum([weight is not None, next_step, back]) != 1:
        raise typer.BadParameter("give exactly one of --weight, --next, --back")
    if weight is None:
        current = running(settings, name)[1].variant(variant).weight
        weight = canary_step(current, 1 if next_step else -1)
    _echo(ramp(settings, name, variant, weight).to_dict())


@experiments_app.command("stop")
@_clean_errors
def experiments_stop(name: str) -> None:
    """Stop assigning: everyone gets production again. The logs and report stay."""
    from jobs.experiments import stop

    _echo(stop(_settings(), name).to_dict())


@experiments_app.command("list")
@_clean_errors
def experiments_list() -> None:
    """Every experiment on record, and the live serving configuration."""
    from jobs.experiments import list_experiments, read_config

    settings = _settings()
    config = json.loads(read_config(settings).to_json())
    _echo({"serving": config, "experiments": [e.to_dict() for e in list_experiments(settings)]})


@experiments_app.command("shadow")
@_clean_errors
def experiments_shadow(
    version: Annotated[
        str | None, typer.Argument(help="Candidate version; omit with --off.")
    ] = None,
    sample: Annotated[float, typer.Option(help="Share of requests scored in shadow.")] = 0.1,
    off: Annotated[bool, typer.Option("--off", help="Stop the shadow run.")] = False,
) -> None:
    """Score a sample of requests with a candidate off the request path; APIs log overlap
    with the live list and the candidate's latency (/metrics, the shadow log)."""
    from jobs.experiments import set_shadow

    if off == (version is not None):
        raise typer.BadParameter("give a VERSION or --off")
    _echo(json.loads(set_shadow(_settings(), None if off else version, sample).to_json()))


@experiments_app.command("report")
@_clean_errors
def experiments_report(
    name: str,
    out: Annotated[Path | None, typer.Option(help="Default: reports/experiments/<name>")] = None,
) -> None:
    """Per-variant exposures, click-through and conversion with confidence intervals and a
    test against the control (statsmodels), as report.md, report.json and ctr.png."""
    from jobs.experiments import report
    from jobs.lifecycle_report import experiment_markdown, write_experiment_report

    result = report(_settings(), name)
    paths = write_experiment_report(result, out or Path("reports") / "experiments" / name)
    typer.echo(experiment_markdown(result))
    typer.echo("written: " + ", ".join(str(p) for p in paths))


@app.command("monitor")
@_clean_errors
def monitor_cmd(
    out: Annotated[Path | None, typer.Option(help="Default: reports/monitor/<run_id>")] = None,
) -> None:
    """Drift of features (Feast now vs the training snapshot) and of the live lists (vs
    the previous run): a report with plots; the figures become the APIs' Prometheus gauges.
    Exit 1 when the run looks suspicious."""
    from jobs.lifecycle_report import monitor_markdown, write_monitor_report
    from jobs.monitor import monitor

    summary = monitor(_settings())
    paths = write_monitor_report(
        summary, out or Path("reports") / "monitor" / str(summary.get("run_id"))
    )
    typer.echo(monitor_markdown(summary))
    typer.echo("written: " + ", ".join(str(p) for p in paths))
    if summary.get("suspicious"):
        raise typer.Exit(1)
