"""What the API holds while it runs: the models, the catalog state, the online store, the event
and exposure logs, the serving configuration (experiment, shadow). Loaded once at start-up; a
missing or corrupt model leaves the app running but not ready (``/ready`` 503 with the reason)
and is retried in the background.

Hot swap: the served model is the one the live-lists pointer names (``model_version``), so
model and lists always change together. When a poll sees a new version, the new bundle is
loaded in a thread while the old one keeps serving, then one reference assignment switches
them: a request holds the :class:`Served` it started with, so none fails during the swap."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from dataclasses import dataclass, field, replace
from functools import partial

import anyio
import faiss
from feast import FeatureStore
from redis.exceptions import RedisError

from api.batching import TwoStageBatcher
from api.eventsink import EventSink
from api.exposures import ExposureSink, ShadowRunner
from api.loadfailures import LoadFailures, fingerprint
from api.online import OnlineStore, Polled
from api.telemetry import Metrics, reset
from recommender.config import Settings
from recommender.contract.published import LiveLists, intact_lists
from recommender.errors import FeatureStoreUnavailable, ModelNotLoaded, RecoError
from recommender.events.log import EventLog
from recommender.featurestore.layout import ViewValues
from recommender.featurestore.redisclient import warn_on_eviction
from recommender.featurestore.repo import check_serving_ready, open_store, push_recent_lists
from recommender.lifecycle.experiments import ServingConfig
from recommender.serving.rerank import RankingItems
from recommender.serving.rules import Catalog
from recommender.training import registry
from recommender.training.artifacts import (
    ModelBundle,
    latest_version,
    load_bundle,
    models_dir,
    verify_version,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One loaded model version and the catalog as its vocabulary sees it."""

    bundle: ModelBundle
    catalog: Catalog
    titles: dict[str, str]
    ranking: RankingItems | None = None  # item features of the bundle's ranker, if it has one

    @classmethod
    def of(cls, bundle: ModelBundle) -> Served:
        titles = dict(zip(bundle.titles.index.astype(str), bundle.titles.astype(str), strict=True))
        return cls(bundle, Catalog.everything_available(len(bundle.items)), titles)


def _no_store(*_: object) -> None:
    raise OSError("the feature store is not loaded")


def _degraded(
    wanted: str, error: BaseException | str | None, version: str, lists: LiveLists | None
) -> str:
    why = f" ({type(error).__name__}: {error})" if isinstance(error, BaseException) else ""
    if isinstance(error, str):
        why = f" ({error})"
    served = (
        f"with the lists of its run {lists.run_id}"
        if lists is not None
        else "without precomputed lists (known users are ranked in real time)"
    )
    return f"degraded: model {wanted} cannot be loaded{why}; serving model {version} {served}"


@dataclass
class Runtime:
    """Build it with :meth:`create`: the logs and sinks exist from the start; the model, the
    Feast store and the online reader appear when :meth:`load` succeeds (until then requests
    get :class:`ModelNotLoaded` from :meth:`require_served`)."""

    settings: Settings
    metrics: Metrics
    events: EventLog
    sink: EventSink
    exposures: ExposureSink
    shadow: ShadowRunner
    exposure_log: EventLog
    batcher: TwoStageBatcher  # concurrent cold requests' two-stage rankings, in blocks
    served: Served | None = None  # production: the model of the live lists
    models: dict[str, Served] = field(default_factory=dict)  # every loaded version
    config: ServingConfig = field(default_factory=ServingConfig)
    store: FeatureStore | None = None
    online: OnlineStore | None = None
    catalog_refreshed: float = 0.0
    not_ready: str | None = "starting"
    live: LiveLists | None = None  # the list slot and run served (polled)
    monitor: dict | None = None  # the last `reco monitor` summary (polled)
    _config_raw: bytes | None = None
    _monitor_raw: bytes | None = None
    # serving, but not what the live pointer names: why (``/ready`` says it), else None
    degraded: str | None = None
    redis_warning: str | None = None  # Redis may evict the platform's keys (``/ready`` says)
    # versions that did not load: why, and when to try each again (backing off)
    _failures: LoadFailures = field(default_factory=LoadFailures)

    @classmethod
    def create(cls, settings: Settings, metrics: Metrics) -> Runtime:
        """Every log and sink of one app instance, ready before the model is."""
        events = EventLog(settings.event_log_dir)
        exposure_log = EventLog(settings.exposure_log_dir, prefix="exposures")
        return cls(
            settings=settings,
            metrics=metrics,
            events=events,
            sink=EventSink(
                events,
                metrics,
                settings.api.recent_items_max,
                _no_store,
                push_wait=settings.api.event_push_wait_ms / 1000,
            ),
            exposures=ExposureSink(
                exposure_log, metrics, settings.lifecycle.exposure_flush_seconds
            ),
            shadow=ShadowRunner(
                metrics, EventLog(settings.exposure_log_dir, fsync=False, prefix="shadow")
            ),
            exposure_log=exposure_log,
            batcher=TwoStageBatcher(metrics.two_stage_block),
        )

    @property
    def bundle(self) -> ModelBundle | None:
        return self.served.bundle if self.served else None

    @property
    def catalog(self) -> Catalog | None:
        return self.served.catalog if self.served else None

    @property
    def titles(self) -> dict[str, str]:
        return self.served.titles if self.served else {}

    def load(self) -> bool:
        """Load model, Feast registry and online layout; False (and a log line) on failure."""
        # A request searches the index for one vector: an OpenMP team of every core would only
        # wait for cores another process holds (the stall of issue 16), whatever OMP_* says.
        faiss.omp_set_num_threads(1)
        try:
            root = self.settings.artifacts_dir
            latest = latest_version(root)  # a model exists (else: train first)
            try:
                store = open_store(self.settings)
                check_serving_ready(store)
                online = OnlineStore(self.settings, store, self.metrics)
            except (RecoError, OSError, ValueError):
                verify_version(root, latest)  # a broken model is reported first
                raise
            self.redis_warning = warn_on_eviction(online.bulk, "api")
            bundle, live = self._first_loadable(online.live_lists(), online)
        except (RecoError, OSError, ValueError) as exc:
            self.not_ready = f"{type(exc).__name__}: {exc}"
            log.error(
                "NOT READY: %s (retrying every %gs)",
                self.not_ready,
                self.settings.api.model_retry_seconds,
            )
            return False
        self.store, self.online = store, online
        self.sink.online = online
        self.sink.push = partial(push_recent_lists, store)
        self.served = Served.of(bundle)
        self.models = {bundle.version: self.served}
        self.refresh_catalog()
        self.set_live(live)
        self._set_model_info(bundle)
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

    def _first_loadable(
        self, live: LiveLists | None, online: OnlineStore
    ) -> tuple[ModelBundle, LiveLists | None]:
        """The model the live lists name (LATEST when none are published) and those lists;
        when it cannot be loaded, the most recently live version that can, with its own
        lists if a slot still holds them (``degraded`` says so). Raises the first error when
        no version loads."""
        root = self.settings.artifacts_dir
        wanted = live.model_version if live is not None else latest_version(root)
        try:
            return load_bundle(root, wanted), live
        except (RecoError, OSError, ValueError) as exc:
            error = exc
        for version in registry.served_before(root, exclude=wanted):
            try:
                bundle = load_bundle(root, version)
            except (RecoError, OSError, ValueError) as exc:
                log.error("fallback model %s cannot be loaded either: %s", version, exc)
                continue
            try:
                lists = intact_lists(online.bulk, self.settings.feast_project, version)
            except RedisError as exc:  # serve the model; its lists are looked for no further
                log.warning("cannot look for the lists of %s: %s", version, exc)
                lists = None
            self.degraded = _degraded(wanted, error, version, lists)
            log.error("DEGRADED: %s", self.degraded)
            return bundle, lists
        raise error

    def served_lists(self, live: LiveLists | None) -> LiveLists | None:
        """The lists to serve beside the served model: the live ones when they name it;
        otherwise (the pointer names a model that cannot be loaded) the lists already served
        with this model, or none (known users are then ranked in real time): a response never
        pairs one version's lists with another version's model."""
        served = self.served
        if live is None and self.degraded is not None:
            return None  # nothing published: the start-up fallback (LATEST did not load) holds
        if live is None or served is None or live.model_version == served.bundle.version:
            if self.degraded is not None and served is not None:
                log.info("serving model %s with its live lists again", served.bundle.version)
            self.degraded = None
            return live
        version = served.bundle.version
        keep = self.live if self.live is not None and self.live.model_version == version else None
        self.degraded = _degraded(
            live.model_version, self._failures.error(live.model_version), version, keep
        )
        return keep

    def _set_model_info(self, bundle: ModelBundle) -> None:
        reset(self.metrics.model_info, 0.0)  # 'max by (version)': the old one reads 0
        self.metrics.model_info.labels(bundle.version, bundle.index.info.get("kind", "?")).set(1)

    def refresh_catalog(self) -> None:
        """Re-read item metadata (availability, genres) from the online store for every
        loaded model; keep the old state when it does not answer."""
        if self.served is None or self.online is None:
            return
        ids: dict[str, None] = {}
        for served in list(self.models.values()):
            ids.update(dict.fromkeys(served.bundle.items.ids.tolist()))
        try:
            views = self.online.item_views(list(ids))
        except FeatureStoreUnavailable as exc:
            log.warning("item metadata not refreshed: %s", exc)
            return
        models = {v: self._with_items(s, views) for v, s in list(self.models.items())}
        self.models = models
        if self.served is not None and self.served.bundle.version in models:
            self.served = models[self.served.bundle.version]
        self.catalog_refreshed = time.time()
        if self.catalog is not None:
            self.metrics.unavailable_items.set(int((~self.catalog.available).sum()))

    def _with_items(self, served: Served, views: dict[str, dict[str, ViewValues]]) -> Served:
        """``served`` with the catalog (and the ranker's item features) from item views."""
        assert self.online is not None
        frame = self.online.metadata_frame(views, self.online.items.views[0].features)
        ranking = RankingItems.from_views(views, served.bundle) if served.bundle.ranking else None
        return replace(
            served, catalog=Catalog.from_frame(frame, served.bundle.items), ranking=ranking
        )

    def _served_for(self, version: str) -> Served | None:
        """The loaded model ``version``, loading it (blocking: call from a thread) if needed;
        None when it cannot be loaded (logged; retried with a growing back-off, or at once
        when its files change: :mod:`api.loadfailures`)."""
        if version in self.models:
            return self.models[version]
        files = fingerprint(models_dir(self.settings.artifacts_dir) / version)
        retry = self.settings.api.model_retry_seconds
        if not self._failures.due(version, files, time.time(), retry):
            return None
        try:
            served = Served.of(load_bundle(self.settings.artifacts_dir, version))
        except (RecoError, OSError, ValueError) as exc:
            self._failures.failed(version, files, f"{type(exc).__name__}: {exc}", time.time())
            log.error("model %s cannot be loaded (keeping the current one): %s", version, exc)
            return None
        if self.online is not None:
            try:
                views = self.online.item_views(served.bundle.items.ids.tolist())
                served = self._with_items(served, views)
            except FeatureStoreUnavailable as exc:
                log.warning("item metadata of %s not read: %s", version, exc)
        self._failures.loaded(version)
        return served

    def sync_models(self, live: LiveLists | None, config: ServingConfig) -> bool:
        """Load what ``live`` and ``config`` need, then switch production (hot swap) and drop
        versions nobody needs. Blocking; False when something could not be loaded yet."""
        ok = True
        production = self.served
        if (
            live is not None
            and production is not None
            and live.model_version != production.bundle.version
        ):
            new = self._served_for(live.model_version)
            if new is None:
                self.metrics.model_swaps.labels("failed").inc()
                ok = False
            else:
                production = new
        needed = {v: self._served_for(v) for v in config.model_versions()}
        ok = ok and all(s is not None for s in needed.values())
        models = {v: s for v, s in needed.items() if s is not None}
        if production is not None:
            models[production.bundle.version] = production
        dropped = set(self.models) - set(models)
        self.models = models
        if production is not self.served and production is not None:
            old = self.served.bundle.version if self.served else None
            self.served = production  # the swap: one reference assignment
            self._set_model_info(production.bundle)
            self.metrics.model_swaps.labels("ok").inc()
            log.info("hot swap: serving model %s (was %s)", production.bundle.version, old)
            dropped.add(old or "")
        if dropped:  # a dropped version's arrays go now, not at the next collection
            gc.collect()
        return ok

    def set_live(self, live: LiveLists | None) -> None:
        if live != self.live:
            log.info(
                "serving lists of run %s (slot %s)",
                live.run_id if live else None,
                live.slot if live else None,
            )
        self.live = live
        if self.online is not None:  # the warm path reads only the live slot's list
            self.online.live_slot = live.slot if live is not None else None

    def require(self) -> tuple[ModelBundle, Catalog, OnlineStore]:
        served, online = self.require_served()
        return served.bundle, served.catalog, online

    def require_served(self) -> tuple[Served, OnlineStore]:
        served, online = self.served, self.online
        if served is None or online is None:
            raise ModelNotLoaded(f"no model loaded: {self.not_ready}")
        return served, online

    async def background(self) -> None:
        """Retry loading until ready. Then poll the catalog version and the live list
        pointer (one MGET per ``catalog_poll_seconds``); re-read item metadata when the
        version changed, or anyway every ``catalog_refresh_seconds`` (changes written without
        bumping the version)."""
        s = self.settings
        version = await self.online.catalog_version() if self.online else None
        while True:
            if self.bundle is None or self.online is None:
                await asyncio.sleep(s.api.model_retry_seconds)
                await anyio.to_thread.run_sync(self.load)
                version = await self.online.catalog_version() if self.online else None
                continue
            await asyncio.sleep(s.api.catalog_poll_seconds)
            polled = await self.online.poll()
            current = None
            if polled is not None:
                current = polled.catalog_version
                try:
                    await self.apply(polled)
                except Exception:  # noqa: BLE001 - the poll loop must survive anything
                    log.exception("applying the polled state failed; retrying at the next poll")
            stale = time.time() - self.catalog_refreshed > s.api.catalog_refresh_seconds
            if (current is not None and current != version) or stale:
                await anyio.to_thread.run_sync(self.refresh_catalog)
                version = current
            if self.catalog_refreshed:
                self.metrics.catalog_age.set(time.time() - self.catalog_refreshed)

    async def apply(self, polled: Polled) -> None:
        """Follow the live pointer (hot swap), the serving configuration and the monitor."""
        config = self.config
        if polled.serving != self._config_raw:
            try:
                config = ServingConfig.parse(polled.serving)
            except (ValueError, KeyError, TypeError, RecoError) as exc:
                log.error("ignoring a malformed serving configuration: %s", exc)
        production = self.served.bundle.version if self.served else None
        live_model = polled.live.model_version if polled.live else production
        if (
            live_model != production
            or config is not self.config
            or (config.model_versions() - set(self.models))
        ):
            ok = await anyio.to_thread.run_sync(self.sync_models, polled.live, config)
            if ok and config is not self.config:
                self._apply_config(config, polled.serving)
        self.set_live(self.served_lists(polled.live))
        if polled.monitor != self._monitor_raw:
            self._monitor_raw = polled.monitor
            self._apply_monitor(polled.monitor)

    def _apply_config(self, config: ServingConfig, raw: bytes | None) -> None:
        self.config, self._config_raw = config, raw
        reset(self.metrics.experiment_weight)
        if config.experiment is not None:
            production = self.served.bundle.version if self.served else ""
            for v in config.experiment.variants:
                self.metrics.experiment_weight.labels(
                    config.experiment.name, v.name, v.model_version or production
                ).set(v.weight)
        log.info(
            "serving configuration: experiment %s, shadow %s",
            config.experiment.weights if config.experiment else None,
            config.shadow.model_version if config.shadow else None,
        )

    def _apply_monitor(self, raw: bytes | None) -> None:
        m = self.metrics
        try:
            summary = json.loads(raw) if raw else None
        except ValueError:
            log.error("ignoring a malformed monitor summary")
            return
        self.monitor = summary
        for gauge in (m.drift_psi, m.drift_ks, m.lists_stat):
            reset(gauge)
        if not summary:
            return
        for row in summary.get("features", []):
            if row.get("psi") is not None:
                m.drift_psi.labels(row["feature"]).set(row["psi"])
            if row.get("ks") is not None:
                m.drift_ks.labels(row["feature"]).set(row["ks"])
        for name, value in (summary.get("lists") or {}).items():
            if value is not None:
                m.lists_stat.labels(name).set(value)
        m.monitor_suspicious.set(1 if summary.get("suspicious") else 0)

    async def close(self) -> None:
        await self.sink.close()
        await self.exposures.flush()
        self.shadow.close()
        self.events.close()
        self.exposure_log.close()
        if self.online is not None:
            await self.online.close()
        if self.store is not None:
            await self.store.close()
