"""Operating commands: `reco serve`, `healthcheck`, `feast-env`."""

from __future__ import annotations

import shlex
import urllib.error
import urllib.request
from typing import Annotated

import typer
import uvicorn

from jobs.cli.common import load_settings
from recommender.featurestore.repo import feast_cli_env


def healthcheck(
    url: Annotated[
        str | None, typer.Option(help="Default: http://127.0.0.1:RECO_PORT/ready")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds.")] = 3.0,
) -> None:
    """Exit 0 when the API answers /ready with 200, else 1 (the container healthcheck)."""
    settings = load_settings()
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
