"""The API's online-store edge: one HMGET per request on Feast's layout, bounded by timeouts,
behind a circuit breaker so a slow or dead Redis costs one timeout, not one per request.
One Redis or a Redis Cluster (``RECO_REDIS_CLUSTER``): a user's views are one hash (one slot),
the polled keys share the project's hash tag (one MGET)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
from feast import FeatureStore
from redis.exceptions import RedisError

from api.leanredis import LeanReader
from api.redisconn import mget, one_slot
from api.telemetry import Metrics
from recommender.config import Settings
from recommender.contract.published import LiveLists, live_key, monitor_key
from recommender.errors import FeatureStoreUnavailable
from recommender.featurestore.layout import FeastLayout, ViewValues
from recommender.featurestore.names import ITEM_METADATA, ITEM_STATS, SLOTS, list_view
from recommender.featurestore.redisclient import make_async_redis, make_redis
from recommender.featurestore.repo import CATALOG_VERSION_KEY
from recommender.lifecycle.experiments import serving_key
from recommender.serving.hybrid import RECENT_VIEW, USER_VIEWS

log = logging.getLogger(__name__)
ITEM_VIEW = ITEM_METADATA
FAILURES = (RedisError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class Polled:
    """What one poll read: the catalog version, the live lists, the serving configuration
    (experiment, shadow) and the last monitor summary (raw JSON)."""

    catalog_version: int
    live: LiveLists | None
    serving: bytes | None = None
    monitor: bytes | None = None


class OnlineStore:
    """``live_slot`` (set by the runtime from the live pointer): the warm path reads only that
    slot's list (the other slot's list, up to top-N ids and scores, is neither sent nor
    decoded); None reads both."""

    def __init__(self, settings: Settings, store: FeatureStore, metrics: Metrics) -> None:
        self.users = FeastLayout.from_store(store, "user_id", USER_VIEWS)
        self.live_slot: str | None = None
        per_slot = {
            slot: [v for v in USER_VIEWS if v not in {list_view(o) for o in SLOTS if o != slot}]
            for slot in SLOTS
        }
        self.user_layouts = {None: self.users} | {
            slot: FeastLayout.from_store(store, "user_id", views)
            for slot, views in per_slot.items()
        }
        # titles come from the model bundle; every other item feature may be a filter
        # item_stats: the ranker's item features, held in memory with the catalog
        views = [ITEM_VIEW, ITEM_STATS]
        self.items = FeastLayout.from_store(store, "item_id", views, exclude=("title",))
        self.version_key = CATALOG_VERSION_KEY.format(project=store.project)
        self.live_key = live_key(store.project)
        self.poll_keys = (
            self.version_key,
            self.live_key,
            serving_key(store.project),
            monitor_key(store.project),
        )
        self.poll_one_slot = one_slot(self.poll_keys)  # hash-tagged: one MGET on a cluster
        self.metrics = metrics
        self.retry_seconds = settings.redis.retry_seconds
        timeout = settings.redis.timeout_ms / 1000
        # one Redis or a Redis Cluster (RECO_REDIS_CLUSTER); per-user reads are single-key
        self.client = make_async_redis(settings.redis, timeout=timeout, connect_timeout=timeout)
        # Bulk reads (catalog refresh) run in a thread with a longer timeout.
        self.bulk = make_redis(settings.redis, timeout=max(timeout, 5.0), connect_timeout=1.0)
        # the warm path's HMGET on a connection of its own without redis-py's per-call cost
        # (one plain Redis; a cluster or TLS keeps redis-py)
        lean = not settings.redis.cluster and settings.redis.url.startswith("redis://")
        password = settings.redis.password.get_secret_value() if settings.redis.password else None
        self.readers = {
            slot: LeanReader(
                settings.redis.url,
                layout.fields,
                timeout,
                password,
                settings.api.user_cache_entries,
            )
            for slot, layout in self.user_layouts.items()
            if lean
        }
        # per slot: a cached reply's decoded views, while the reader returns that same reply
        self._decoded: dict[str | None, dict[bytes, tuple[object, dict[str, ViewValues]]]] = {
            slot: {} for slot in self.user_layouts
        }
        self._down_until = 0.0
        self.last_error: str | None = None
        self._read_user_latency = metrics.redis_latency.labels("read_user")

    def _tripped(self, op: str, exc: BaseException) -> FeatureStoreUnavailable:
        self.metrics.redis_errors.labels(op).inc()
        if self.last_error is None:
            log.warning("online store unavailable (%s: %s); serving fallbacks", op, exc)
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._down_until = time.monotonic() + self.retry_seconds
        return FeatureStoreUnavailable(f"online store unavailable ({self.last_error})")

    def _check_breaker(self) -> None:
        if time.monotonic() < self._down_until:
            raise FeatureStoreUnavailable(
                f"online store unavailable ({self.last_error}); retrying within "
                f"{self.retry_seconds:g} s"
            )

    def _recovered(self) -> None:
        if self.last_error is not None:
            log.info("online store reachable again")
            self.last_error = None

    async def user_views(self, user_id: str) -> dict[str, ViewValues]:
        """Every serving view of one user in one round trip."""
        self._check_breaker()
        slot = self.live_slot
        layout, reader = self.user_layouts[slot], self.readers.get(slot)
        key = layout.key(user_id)
        t0 = time.perf_counter()
        try:
            if reader is not None:
                raw = await reader.hmget(key)
            else:
                raw = await self.client.hmget(key, layout.fields)  # type: ignore[arg-type,misc]
        except FAILURES as exc:
            raise self._tripped("read_user", exc) from exc
        finally:
            self._read_user_latency.observe(time.perf_counter() - t0)
        if self.last_error is not None:
            self._recovered()
        if reader is None or reader.cache is None:
            return layout.decode(raw)
        # The reader's cache hands back the very reply object it holds until Redis
        # invalidates the key, so "the same object" means "still valid": decode it once.
        # The ttl is checked per request; the views are read, never changed, downstream.
        memo = self._decoded[slot]
        got = memo.get(key)
        if got is None or got[0] is not raw:
            if len(memo) >= reader.cache_entries:
                memo.clear()
            got = memo[key] = (raw, layout.decode_all(raw))
        return layout.fresh(got[1], datetime.now(timezone.utc))

    async def recent_items(self, user_ids: Sequence[str]) -> dict[str, list[str]]:
        """Stored recent items of several users (one pipeline)."""
        self._check_breaker()
        t0 = time.perf_counter()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for u in user_ids:
                    pipe.hmget(self.users.key(u), self.users.fields)  # type: ignore[arg-type]
                replies = await pipe.execute()
        except FAILURES as exc:
            raise self._tripped("read_recent", exc) from exc
        finally:
            self.metrics.redis_latency.labels("read_recent").observe(time.perf_counter() - t0)
        out = {}
        for u, raw in zip(user_ids, replies, strict=True):
            view = self.users.decode(raw).get(RECENT_VIEW) or {}
            out[u] = [str(i) for i in view.get("recent_item_ids") or []]
        return out

    def item_views(
        self, item_ids: Sequence[str], chunk: int = 5000
    ) -> dict[str, dict[str, ViewValues]]:
        """Every item view of the items (blocking; run it in a thread). Raises
        FeatureStoreUnavailable."""
        t0 = time.perf_counter()
        out: dict[str, dict[str, ViewValues]] = {}
        try:
            for start in range(0, len(item_ids), chunk):
                ids = item_ids[start : start + chunk]
                with self.bulk.pipeline(transaction=False) as pipe:
                    for i in ids:
                        pipe.hmget(self.items.key(i), self.items.fields)  # type: ignore[arg-type]
                    replies = pipe.execute()
                for i, raw in zip(ids, replies, strict=True):
                    out[i] = self.items.decode(raw)
        except FAILURES as exc:
            self.metrics.redis_errors.labels("read_items").inc()
            raise FeatureStoreUnavailable(f"online store unavailable ({exc})") from exc
        finally:
            self.metrics.redis_latency.labels("read_items").observe(time.perf_counter() - t0)
        return out

    @staticmethod
    def metadata_frame(
        views: dict[str, dict[str, ViewValues]], features: Sequence[str]
    ) -> pd.DataFrame:
        """The item metadata rows of :meth:`item_views` (items without metadata left out)."""
        rows = [{"item_id": i, **v[ITEM_VIEW]} for i, v in views.items() if v.get(ITEM_VIEW)]
        return pd.DataFrame(rows, columns=["item_id", *features, "_ts"])

    def item_metadata(self, item_ids: Sequence[str], chunk: int = 5000) -> pd.DataFrame:
        """Item metadata rows (blocking; run it in a thread). Raises FeatureStoreUnavailable."""
        return self.metadata_frame(self.item_views(item_ids, chunk), self.items.views[0].features)

    async def catalog_version(self) -> int | None:
        """The counter bumped by catalog changes, or None when Redis does not answer."""
        got = await self.poll()
        return None if got is None else got.catalog_version

    async def poll(self) -> Polled | None:
        """Everything the API follows, in one MGET (None when Redis does not answer)."""
        try:
            version, live, serving, monitor = await mget(
                self.client, self.poll_keys, self.poll_one_slot
            )
        except FAILURES:
            return None
        return Polled(int(version or 0), LiveLists.parse(live), serving, monitor)

    def live_lists(self) -> LiveLists | None:
        """The live list pointer, read synchronously (start-up)."""
        try:
            return LiveLists.parse(self.bulk.get(self.live_key))  # type: ignore[arg-type]
        except FAILURES:
            return None

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())  # type: ignore[misc]
        except FAILURES:
            return False

    async def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        await self.client.aclose()
        self.bulk.close()
