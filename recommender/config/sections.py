"""The sections of :class:`recommender.config.Settings`: one frozen model per stage (Redis,
training with its ALS and ranker parameters, the nightly, the API, the lifecycle), each field
read from its flat ``RECO_*`` variable (``flat_prefix`` / ``flat_names`` say how it is spelled),
and the API keys' roles."""

from __future__ import annotations

import os
from typing import ClassVar, Literal, NamedTuple, get_args
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

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
        default=True,
        description="train the two-stage ranker with `reco train` and rank the nightly lists "
        "with it, when its replay serves known users at least as well as the ALS lists "
        "(off: ALS lists)",
    )
    require_win: bool = Field(
        default=True,
        description="ship the ranker only when its replay inside the training data serves known "
        "users at least as well as the ALS lists (off: whenever it trains)",
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
    future_tuning: bool = Field(
        default=True,
        description="choose ALS's regularization and alpha on the future inside the training "
        "data (fitted before an earlier time cut-off, judged on the returning users' lists); "
        "a RECO_ALS_* variable still wins",
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
