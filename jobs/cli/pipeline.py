"""The pipeline's top-level commands: `reco train`, `nightly`, `schedule`, `evaluate`,
`monitor` (registered on the main app by :mod:`jobs.cli.main`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jobs.cli.common import clean_errors, load_settings, parse_time
from jobs.schedule import parse_cron, run_schedule
from recommender.lifecycle.monitor import monitor
from recommender.lifecycle.reports import monitor_markdown, write_monitor_report
from recommender.pipeline.evaluate import run_evaluation
from recommender.pipeline.nightly import run_nightly
from recommender.pipeline.train import train as run_train


@clean_errors
def train(
    cutoff: Annotated[
        str | None, typer.Option(help="Train on interactions before this ISO time (default: all).")
    ] = None,
    no_publish: Annotated[
        bool, typer.Option("--no-publish", help="Save without making it the live version.")
    ] = False,
) -> None:
    """Train ALS (+ FAISS index, cold-start model) and save a versioned artifact.

    Parameters: RECO_ALS_* if set, else the file `reco evaluate --tune` wrote, else defaults."""
    settings = load_settings()
    bundle = run_train(settings, cutoff=parse_time(cutoff), publish=not no_publish)
    metrics = bundle.manifest.metrics
    typer.echo(
        json.dumps(
            {
                "version": bundle.version,
                "ndcg@10": {
                    "als": round(metrics["als"]["ndcg@10"], 4),
                    "popularity": round(metrics["popularity"]["ndcg@10"], 4),
                },
            }
        )
    )


@clean_errors
def nightly(
    retrain: Annotated[
        bool, typer.Option(help="Train a new model first instead of loading the live one.")
    ] = False,
    engine: Annotated[
        str | None, typer.Option(help="Scoring engine: local or ray (default RECO_ENGINE).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an unfinished run's remaining chunks if possible.")
    ] = True,
) -> None:
    """Precompute top-N for every known user into the unpublished list slot, materialize
    features, then publish atomically. Safe to kill and rerun; one run at a time."""
    if engine not in (None, "local", "ray"):
        raise typer.BadParameter(f"--engine must be local or ray, not {engine!r}")
    try:
        manifest = run_nightly(load_settings(), retrain=retrain, engine=engine, resume=resume)
    except KeyboardInterrupt as exc:
        typer.echo(f"error: nightly run interrupted ({exc or 'Ctrl-C'}); rerun to resume", err=True)
        raise typer.Exit(130) from exc
    keys = ("run_id", "status", "slot", "model_version", "users", "durations_s", "peak_rss_mb")
    typer.echo(manifest.model_dump_json(include=set(keys)))


@clean_errors
def schedule(
    cron: Annotated[
        str | None,
        typer.Option(help="Cron expression, UTC (default RECO_NIGHTLY_CRON, '0 2 * * *')."),
    ] = None,
) -> None:
    """Run `reco nightly` on a cron schedule, each run in its own process (compose's nightly
    service). SIGTERM stops it; a run in progress is interrupted and resumes next time."""
    settings = load_settings()
    expression = parse_cron(cron or settings.nightly.cron)
    run_schedule(expression)


def _parse_ks(value: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} must be comma-separated integers, e.g. 5,10,20"
        ) from exc
    if not ks or min(ks) < 1 or max(ks) > 1000:
        raise typer.BadParameter("k values must be between 1 and 1000")
    return ks


@clean_errors
def evaluate(
    dataset: Annotated[
        str, typer.Option(help="ml-100k, ml-1m, or tables (the feature repo's own data).")
    ] = "ml-100k",
    protocol: Annotated[
        str, typer.Option(help="random (RecBole 8:1:1), temporal, leave-last-n, user-temporal.")
    ] = "random",
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated: popularity,itemknn,als,bpr,ease, and ranked (the two-stage "
            "model: retrievers + LightGBM ranker, with paired bootstrap intervals)."
        ),
    ] = "popularity,itemknn,als,bpr,ease",
    k: Annotated[str, typer.Option(help="Cut-offs, comma-separated.")] = "5,10,20",
    tune: Annotated[
        bool, typer.Option("--tune", help="Grid-search each model on the validation part.")
    ] = False,
    min_rating: Annotated[
        float | None, typer.Option(help="Keep only ratings >= this (e.g. 3 for ML-1M).")
    ] = None,
    replay: Annotated[bool, typer.Option(help="Replay the served hybrid by path.")] = True,
    out: Annotated[
        Path | None, typer.Option(help="Report directory (default reports/...).")
    ] = None,
) -> None:
    """Offline evaluation: protocols, models (and the two-stage ``ranked``), tuning,
    served-hybrid replay -> reports/."""
    path = run_evaluation(
        load_settings(),
        dataset,
        protocol=protocol,
        models=[m.strip() for m in models.split(",") if m.strip()],
        ks=_parse_ks(k),
        do_tune=tune,
        min_rating=min_rating,
        replay=replay,
        out_dir=out,
    )
    _echo_summary(path)


def _echo_summary(report: Path) -> None:
    """One JSON line: the report's directory and each model's NDCG at 10 (or the first k)."""
    summary = json.loads((report / "metrics.json").read_text())
    key = "ndcg@10" if 10 in summary["ks"] else f"ndcg@{summary['ks'][0]}"
    ndcg = {n: round(r["metrics"][key], 4) for n, r in summary["models"].items()}
    typer.echo(json.dumps({"report": str(report), key: ndcg}))


@clean_errors
def monitor_cmd(
    out: Annotated[Path | None, typer.Option(help="Default: reports/monitor/<run_id>")] = None,
) -> None:
    """Drift of features (Feast now vs the training snapshot) and of the live lists (vs
    the previous run): a report with plots; the figures become the APIs' Prometheus gauges.
    Exit 1 when the run looks suspicious."""
    summary = monitor(load_settings())
    paths = write_monitor_report(
        summary, out or Path("reports") / "monitor" / str(summary.get("run_id"))
    )
    typer.echo(monitor_markdown(summary))
    typer.echo("written: " + ", ".join(str(p) for p in paths))
    if summary.get("suspicious"):
        raise typer.Exit(1)
