"""Operating commands: `reco serve`, `healthcheck`, `feast-env`."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
import uvicorn

from jobs.cli.common import load_settings
from jobs.healthcheck import default_url, probe
from recommender.featurestore.repo import feast_cli_env


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
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn (the app factory is api.main:create_app)."""
    settings = load_settings()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,  # the gateway trusts forwarded headers from RECO_TRUSTED_PROXIES only
    )


def feast_env() -> None:
    """Print shell exports that point the `feast` CLI at this project and Redis:
    eval "$(reco feast-env)" (not needed for the defaults, project reco on 127.0.0.1:6379)."""
    settings = load_settings()
    for key, value in feast_cli_env(settings).items():
        typer.echo(f"export {key}={shlex.quote(value)}")
