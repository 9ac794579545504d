"""What the API holds while it runs: the model, the catalog state, the online store, the event
log. Loaded once at start-up; a missing or corrupt model leaves the app running but not ready
(``/ready`` 503 with the reason) and is retried in the background."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from functools import partial

import anyio
from feast import FeatureStore

from api.eventsink import EventSink
from api.metrics import Metrics
from api.online import OnlineStore
from recommender.artifacts import ModelBundle, load_bundle
from recommender.config import Settings
from recommender.errors import FeatureStoreUnavailable, ModelNotLoaded, RecoError
from recommender.eventlog import EventLog
from recommender.publication import LiveLists
from recommender.rules import Catalog
from recommender.store import check_serving_ready, open_store, push_recent_lists

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    metrics: Metrics
    events: EventLog
    bundle: ModelBundle | None = None
    store: FeatureStore | None = None
    online: OnlineStore | None = None
    catalog: Catalog | None = None
    titles: dict[str, str] = field(default_factory=dict)
    catalog_refreshed: float = 0.0
    not_ready: str | None = "starting"
    sink: EventSink | None = None
    live: LiveLists | None = None  # the list slot and run served (polled)

    def load(self) -> bool:
        """Load model, Feast registry and online layout; False (and a log line) on failure."""
        try:
            bundle = load_bundle(self.settings.artifacts_dir)
            store = open_store(self.settings)
            check_serving_ready(store)
            online = OnlineStore(self.settings, store, self.metrics)
        except (RecoError, OSError, ValueError) as exc:
            self.not_ready = f"{type(exc).__name__}: {exc}"
            log.error(
                "NOT READY: %s (retrying every %gs)",
                self.not_ready,
                self.settings.model_retry_seconds,
            )
            return False
        self.bundle, self.store, self.online = bundle, store, online
        if self.sink is not None:
            self.sink.online = online
            self.sink.push = partial(push_recent_lists, store)
        self.titles = dict(
            zip(bundle.titles.index.astype(str), bundle.titles.astype(str), strict=True)
        )
        self.catalog = Catalog.everything_available(len(bundle.items))
        self.refresh_catalog()
        self.set_live(online.live_lists())
        self.metrics.model_info.labels(bundle.version, bundle.index.info.get("kind", "?")).set(1)
        self.metrics.model_loaded.set(1)
        self.not_ready = None
        gc.freeze()  # the model's objects never need scanning by the cyclic GC again
        log.info(
            "serving model %s (%d users, %d items, %s index) from project %s",
            bundle.version,
            len(bundle.users),
            len(bundle.items),
            bundle.index.info.get("kind"),
            self.settings.feast_project,
        )
        return True

    def refresh_catalog(self) -> None:
        """Re-read item metadata (availability, genres) from the online store; keep the old
        state when it does not answer."""
        if self.bundle is None or self.online is None:
            return
        try:
            frame = self.online.item_metadata(self.bundle.items.ids.tolist())
        except FeatureStoreUnavailable as exc:
            log.warning("item metadata not refreshed: %s", exc)
            return
        self.catalog = Catalog.from_frame(frame, self.bundle.items)
        self.catalog_refreshed = time.time()
        self.metrics.unavailable_items.set(int((~self.catalog.available).sum()))

    def set_live(self, live: LiveLists | None) -> None:
        if live != self.live:
            log.info(
                "serving lists of run %s (slot %s)",
                live.run_id if live else None,
                live.slot if live else None,
            )
        self.live = live

    def require(self) -> tuple[ModelBundle, Catalog, OnlineStore]:
        if self.bundle is None or self.catalog is None or self.online is None:
            raise ModelNotLoaded(f"no model loaded: {self.not_ready}")
        return self.bundle, self.catalog, self.online

    async def background(self) -> None:
        """Retry loading until ready. Then poll the catalog version and the live list
        pointer (one MGET per ``catalog_poll_seconds``); re-read item metadata when the
        version changed, or anyway every ``catalog_refresh_seconds`` (changes written without
        bumping the version)."""
        s = self.settings
        version = await self.online.catalog_version() if self.online else None
        while True:
            if self.bundle is None or self.online is None:
                await asyncio.sleep(s.model_retry_seconds)
                await anyio.to_thread.run_sync(self.load)
                version = await self.online.catalog_version() if self.online else None
                continue
            await asyncio.sleep(s.catalog_poll_seconds)
            polled = await self.online.poll()
            current = None
            if polled is not None:
                current, live = polled
                self.set_live(live)
            stale = time.time() - self.catalog_refreshed > s.catalog_refresh_seconds
            if (current is not None and current != version) or stale:
                await anyio.to_thread.run_sync(self.refresh_catalog)
                version = current
            if self.catalog_refreshed:
                self.metrics.catalog_age.set(time.time() - self.catalog_refreshed)

    async def close(self) -> None:
        self.events.close()
        if self.online is not None:
            await self.online.close()
        if self.store is not None:
            await self.store.close()
