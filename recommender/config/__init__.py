"""The one Settings object, read from ``RECO_*`` environment variables.

Build it with :func:`get_settings` (or construct ``Settings(...)`` in tests); nothing reads
configuration at import time.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple, get_args
from urllib.parse import unquote, urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
# What an API key may do: a client calls the serving routes; an admin also the /admin ones.
ApiKeyRole = Literal["client", "admin"]
DEFAULT_API_KEY_ROLE: ApiKeyRole = "client"  # a key listed without a role (least privilege)
_ROLE_NAMES: dict[str, ApiKeyRole] = {role: role for role in get_args(ApiKeyRole)}


class ApiKeyHolder(NamedTuple):
    """Who presents a key: ``name`` is what metrics show, ``role`` what the key may do."""

    name: str
    role: ApiKeyRole = DEFAULT_API_KEY_ROLE


class Settings(BaseSettings):
    """Platform configuration. Every field maps to ``RECO_<FIELD>`` (e.g. ``RECO_REDIS_URL``)."""

    model_config = SettingsConfigDict(env_prefix="RECO_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password: SecretStr | None = None
    redis_cluster: bool = Field(
        False, description="RECO_REDIS_URL is one seed node of a Redis Cluster (the API's client)"
    )
    feast_project: str = "reco"
    feature_repo: Path = Path("feature_repo")
    artifacts_dir: Path = Path("artifacts")
    cache_dir: Path = Path(".cache")
    dataset: str = "ml-100k"

    top_n: int = Field(100, ge=1, le=1000)
    batch_size: int = Field(1024, ge=1, description="users scored at once (memory)")
    seed: int = 42
    eval_max_users: int = Field(20_000, ge=100, description="hold-out users ranked in training")
    holdout_fit_users: int = Field(
        100_000, ge=100, description="users the hold-out ALS is fitted on (a seeded sample)"
    )
    ranker: bool = Field(
        False,
        description="train the two-stage ranker with `reco train` and rank the nightly lists "
        "with it (off: ALS lists)",
    )
    ranker_fit_users: int = Field(
        20_000, ge=100, description="users the ranker's training rows come from (a seeded sample)"
    )
    # the ranker's cost knobs (docs/evaluation.md: quality and nightly cost at several values)
    ranker_depth: int = Field(
        100, ge=1, le=1000, description="candidates each retriever proposes per user"
    )
    ranker_rounds: int = Field(
        400, ge=1, le=10_000, description="boosting rounds (trees) of the LightGBM ranker"
    )

    # Nightly job (recommender/pipeline/nightly.py): chunks are the unit of progress, resume
    # and distribution.
    chunk_users: int = Field(50_000, ge=1, description="users per chunk")
    data_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="processes building the blocks of `reco data synthetic`; default one per "
        "core, 0 = in the job's own process",
    )
    rank_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="processes ranking the two-stage nightly's blocks of users; default one per "
        "core, 0 = in the job's own process",
    )
    memory_budget_mb: int | None = Field(
        None, ge=64, description="memory a batch step may plan to use; default 70% of available"
    )
    write_batch: int = Field(4000, ge=1, le=100_000, description="rows per Redis round trip")
    write_workers: int = Field(
        0, ge=0, le=64, description="processes encoding and writing; 0 = the writer thread"
    )
    lock_seconds: float = Field(60.0, ge=1, description="run lock expiry (heartbeat: 1/3)")
    lock_wait_seconds: float = Field(0.0, ge=0, description="wait for a running run's lock")
    keep_list_runs: int = Field(7, ge=1, description="published runs kept in the offline table")
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, description="Ray cluster; default: start a local one")
    ray_num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray instance")
    nightly_cron: str = Field("0 2 * * *", description="`reco schedule`, UTC; seconds last")

    # ALS defaults: the validation search on ML-100K (docs/evaluation.md). A tuning file
    # written by `reco evaluate --tune` overrides them unless a RECO_ALS_* variable is set.
    als_factors: int = Field(128, ge=2)
    als_iterations: int = Field(15, ge=1)
    als_regularization: float = Field(20.0, ge=0)
    als_alpha: float = Field(2.0, gt=0)
    als_weighting: Literal["binary", "rating"] = "binary"

    # Serving (api/): online-store timeouts and the circuit breaker, freshness, limits.
    list_ttl_seconds: int = Field(3 * 24 * 3600, ge=1, description="older lists are ignored")
    redis_timeout_ms: int = Field(100, ge=1, le=60_000)
    redis_retry_seconds: float = Field(1.0, ge=0, description="breaker: pause after a failure")
    catalog_poll_seconds: float = Field(1.0, ge=0.05, description="catalog version check")
    catalog_refresh_seconds: float = Field(600.0, ge=0.1, description="full re-read anyway")
    model_retry_seconds: float = Field(10.0, ge=0.1)
    api_keys: SecretStr | None = Field(
        None,
        description="comma-separated name:key[:role] entries; role client (default: the "
        "serving routes) or admin (also /admin); unset = no authentication",
    )
    rate_limit_per_second: float = Field(0.0, ge=0, description="per API key; 0 = off")
    rate_limit_burst: int = Field(0, ge=0, description="bucket size; 0 = 2 s of rate")
    max_body_bytes: int = Field(1 << 20, ge=1024)
    max_event_future_seconds: int = Field(300, ge=0)
    max_batch_events: int = Field(1000, ge=1, le=100_000)
    recent_items_max: int = Field(50, ge=1, le=1000)
    event_push_wait_ms: int = Field(
        1000,
        ge=1,
        le=60_000,
        description="POST /events waits at most this long for the online push once the events "
        "are durable (then answers online: false; the push goes on)",
    )
    events_dir: Path | None = Field(None, description="default: <feature_repo>/data/events")

    # The gateway (api/middleware.py): which peers may say who the client is (X-Forwarded-For),
    # how many buckets a limiter keeps (least recently used dropped), failed-key throttling.
    trusted_proxies: str = Field(
        "",
        pattern=r"^[0-9A-Fa-f:.,/\s]*$",
        description="comma-separated IPs or CIDRs of reverse proxies; empty = trust none",
    )
    rate_limit_max_buckets: int = Field(10_000, ge=1, description="per limiter (memory bound)")
    auth_failures_per_minute: int = Field(
        10,
        ge=0,
        description="failed X-API-Key attempts per address, then 429 for the failing ones "
        "(a valid key is never held back); 0 = off",
    )

    # Model lifecycle: promotion gate, experiments, shadow runs, drift (`reco models`,
    # `reco experiments`, `reco monitor`).
    promotion_metrics: str = Field("ndcg@10,recall@10", description="compared by the gate")
    promotion_tolerance: float = Field(0.02, ge=0, le=1, description="relative; 0.02 = 2%")
    exposures_dir: Path | None = Field(None, description="default: <feature_repo>/data/exposures")
    exposure_flush_seconds: float = Field(0.05, gt=0, le=10, description="exposure group commit")
    attribution_window_hours: float = Field(24.0, gt=0, description="events after an exposure")
    drift_max_psi: float = Field(0.25, gt=0)
    drift_min_overlap: float = Field(0.2, ge=0, le=1, description="top-10 vs the previous run")
    drift_max_coverage_drop: float = Field(0.5, ge=0, le=1)
    drift_max_gini: float = Field(0.95, gt=0, le=1)
    drift_sample_users: int = Field(2000, ge=10, description="users compared by drift checks")
    drift_list_users: int = Field(
        100_000, ge=10, description="users whose lists the drift monitor compares (a sample)"
    )

    user_cache_entries: int = Field(
        10_000,
        ge=0,
        le=10_000_000,
        description="warm-path replies kept per worker (~2 KB each), invalidated by Redis "
        "(RESP3 client tracking), none used after 30 s; 0 = off",
    )
    workers: int = Field(
        0,
        ge=0,
        le=256,
        description="`reco serve` worker processes; 0 = one per core. With more than one, "
        "rate limits are kept in Redis so that they hold across workers",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="`reco serve` closes a connection whose request line and headers take "
        "longer to arrive (slow clients trickling headers)",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "INFO"

    @field_validator("feast_project")
    @classmethod
    def _valid_project(cls, value: str) -> str:
        if not _PROJECT_RE.match(value):
            raise ValueError("feast_project must be letters, digits and underscores")
        return value

    @field_validator("redis_url")
    @classmethod
    def _valid_redis_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise ValueError("redis_url must look like redis://host:port/db")
        return value

    @model_validator(mode="after")
    def _cluster_has_one_database(self) -> Settings:
        db = urlparse(self.redis_url).path.lstrip("/")
        if self.redis_cluster and db not in ("", "0"):
            raise ValueError(
                f"a Redis Cluster has only database 0, but redis_url names /{db} "
                "(RECO_REDIS_CLUSTER is on)"
            )
        return self

    @property
    def data_dir(self) -> Path:
        """Offline tables live inside the Feast repo, as in Feast's own templates."""
        return self.feature_repo / "data"

    @property
    def resolved_data_workers(self) -> int:
        return (os.cpu_count() or 1) if self.data_workers is None else self.data_workers

    @property
    def resolved_rank_workers(self) -> int:
        return (os.cpu_count() or 1) if self.rank_workers is None else self.rank_workers

    @property
    def event_log_dir(self) -> Path:
        """The durable offline event log written by ``POST /events`` (JSON lines segments)."""
        return self.events_dir or self.data_dir / "events"

    @property
    def exposure_log_dir(self) -> Path:
        """Exposures (every response) and shadow comparisons (JSON lines segments)."""
        return self.exposures_dir or self.data_dir / "exposures"

    @property
    def promotion_metric_names(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.promotion_metrics.split(",") if m.strip())

    def api_key_holders(self) -> dict[str, ApiKeyHolder]:
        """``{key: holder}`` from ``RECO_API_KEYS="web:secret1,ops:secret2:admin"``; empty when
        authentication is off. An entry is ``name:key:role``, ``name:key`` (a client) or a bare
        key (a client named ``key<position>``). A key may hold colons: the last part is the role
        only when it is ``client`` or ``admin`` (any case), else it belongs to the key.

        Raises ``ValueError`` (naming the entry, never echoing a key) for an empty key or one
        listed twice (it would have two roles).

        Example: ``Settings(api_keys="ops:s3:admin").api_key_holders()`` is
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

    @property
    def als_tuning_file(self) -> Path:
        """Where `reco evaluate --tune` leaves the chosen ALS parameters for `reco train`."""
        return self.artifacts_dir / "tuning" / "als.json"

    @cached_property
    def feast_redis_connection(self) -> str:
        """The Redis URL in Feast's ``host:port,db=N[,password=..][,ssl=true]`` form."""
        parsed = urlparse(self.redis_url)
        parts = [f"{parsed.hostname}:{parsed.port or 6379}"]
        db = (parsed.path or "/0").lstrip("/") or "0"
        parts.append(f"db={db}")
        password = (
            self.redis_password.get_secret_value()
            if self.redis_password
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
        if self.redis_cluster:  # deploy/feast/feature_store.redis-cluster.yaml expands it
            env["RECO_FEAST_REDIS_CLUSTER"] = self.feast_redis_cluster_connection
        return env


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning.

    Example: ``get_settings(feast_project="demo").feast_env()["RECO_FEAST_PROJECT"] == "demo"``
    """
    return Settings(**overrides)  # type: ignore[arg-type]
