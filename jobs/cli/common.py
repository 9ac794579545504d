"""What every `reco` command shares: settings from ``RECO_*`` (a bad one exits 2 with one
line), domain errors as one line on stderr and exit 2, time and JSON helpers."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from recommender.config import Settings, get_settings
from recommender.errors import RecoError

log = logging.getLogger("reco")
F = TypeVar("F", bound=Callable[..., Any])


def load_settings() -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(
            f"error: invalid setting {Settings.variable(first['loc'])}: {first['msg']}", err=True
        )
        raise typer.Exit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("feast").setLevel(logging.WARNING)  # its registry refreshes are noise
    return settings


def clean_errors(fn: F) -> F:
    """Domain errors become one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RecoError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date/time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=1, default=str))
