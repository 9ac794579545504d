"""Operating commands: `reco serve`, `healthcheck`, `feast-env`."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
import uvicorn

from jobs.cli.common import load_settings
from jobs.healthcheck import default_url, probe
from recommender.featurestore.repo import feast_cli_env

# uvicorn's protocol with a time limit on request heads (api/headtimeout.py; named, not
# imported: jobs/ does not import api/)
HEAD_TIMEOUT_PROTOCOL = "api.headtimeout:HeadTimeoutProtocol"

log = logging.getLogger(__name__)
WORKER_HEALTHCHECK_SECONDS = 60
MULTIPROC_ENV = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")


def healthcheck(
    url: Annotated[
        str | None, typer.Option(help="Default: http://127.0.0.1:RECO_PORT/ready")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds.")] = 3.0,
) -> None:
    """Exit 0 when the API answers /ready with 200, else 1 (compose probes with the lighter
    `python -m jobs.healthcheck`, the same check)."""
    load_settings()  # a bad RECO_* setting is reported like in every command
    target = url or default_url()
    problem = probe(target, timeout)
    if problem is not None:
        typer.echo(f"unhealthy: {target}: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo("ok")


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default RECO_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RECO_PORT).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=0, help="Worker processes (default RECO_WORKERS; 0 = one per core)."),
    ] = None,
) -> None:
    """Serve the API with uvicorn (the app factory is api.main:create_app), one worker process
    per core by default. With several, Prometheus metrics are aggregated across them (a fresh
    PROMETHEUS_MULTIPROC_DIR, removed at exit) and rate limits are kept in Redis."""
    settings = load_settings()
    count = workers if workers is not None else settings.api.workers
    count = count or os.cpu_count() or 1
    with _multiprocess_metrics(count):
        os.environ["RECO_WORKERS"] = str(count)  # the workers' Settings: shared rate limits
        uvicorn.run(
            "api.main:create_app",
            factory=True,
            host=host or settings.api.host,
            port=port or settings.api.port,
            workers=count,
            log_level=settings.log_level.lower(),
            access_log=False,
            proxy_headers=False,  # the gateway trusts forwarded headers from RECO_TRUSTED_PROXIES
            # a spawned worker imports this CLI (its __main__) and Feast before it can answer
            # the supervisor's ping: ~10 s on a busy machine, past uvicorn's default of 5 s
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            http=HEAD_TIMEOUT_PROTOCOL,  # slow request heads are cut off (uvicorn has no limit)
        )


@contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[None]:
    """prometheus_client's multiprocess mode for ``workers`` > 1: the workers (started with
    spawn, so they read the variables at import) write their values into one fresh directory
    (under TMPDIR), removed at exit. Both names are set: prometheus_client reads one, and
    Feast, when imported, makes a directory of its own unless it finds the other."""
    if workers <= 1:
        yield
        return
    directory = tempfile.mkdtemp(prefix="reco-metrics-")
    saved = {name: os.environ.get(name) for name in MULTIPROC_ENV}
    os.environ.update(dict.fromkeys(MULTIPROC_ENV, directory))
    log.info("%d workers; metrics aggregated in %s", workers, directory)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(directory, ignore_errors=True)


def feast_env() -> None:
    """Print shell exports that point the `feast` CLI at this project and Redis:
    eval "$(reco feast-env)" (not needed for the defaults, project reco on 127.0.0.1:6379)."""
    settings = load_settings()
    for key, value in feast_cli_env(settings).items():
        typer.echo(f"export {key}={shlex.quote(value)}")
