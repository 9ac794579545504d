"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

Several worker processes (``reco serve --workers N``) share their metrics through
prometheus_client's multiprocess mode: ``reco serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (a
fresh directory, removed at exit) and ``RECO_WORKERS`` before the workers start; every worker
writes its values there and ``/metrics`` of any worker answers for all of them
(:func:`exposition`). Counters and
histograms add up; each gauge says how (``multiprocess_mode``): the live workers' maximum for
ages and counts, the most recent value for what every worker sets alike (experiment weights,
drift), one series per worker for the model each one serves. Files of workers that died are
dropped at the next scrape.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from recommender.serving.paths import Ranked

# Sub-millisecond resolution: the warm path's target is p99 <= 1 ms.
LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
AGE_BUCKETS = (1, 10, 60, 600, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400, 3.2e7)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "reco_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "reco_http_request_duration_seconds",
            "Time in the app per route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.served = Counter(
            "reco_recommendations", "Lists served by path", ["source", "strategy"], registry=r
        )
        self.path_latency = Histogram(
            "reco_serving_path_duration_seconds",
            "Time to rank per serving path",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "reco_fallbacks", "Requests served by a fallback, by reason", ["reason"], registry=r
        )
        self.errors = Counter("reco_errors", "Errors by kind", ["kind"], registry=r)
        self.redis_latency = Histogram(
            "reco_redis_duration_seconds",
            "Online-store calls",
            ["op"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.redis_errors = Counter(
            "reco_redis_errors", "Online-store calls that failed or timed out", ["op"], registry=r
        )
        self.model_info = Gauge(
            "reco_model_info",
            "The served model version (value 1)",
            ["version", "index"],
            registry=r,
            multiprocess_mode="liveall",  # per worker: during a swap they may differ
        )
        self.model_loaded = Gauge(
            "reco_model_loaded",
            "1 when a model is loaded (in every live worker)",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.list_age = Histogram(
            "reco_list_age_seconds",
            "Age of precomputed lists when served",
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.feature_age = Histogram(
            "reco_feature_age_seconds",
            "Age of online features when used",
            ["feature"],
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.catalog_age = Gauge(
            "reco_catalog_age_seconds",
            "Seconds since item metadata was refreshed (the oldest worker's)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.unavailable_items = Gauge(
            "reco_catalog_unavailable_items",
            "Items marked unavailable",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.events = Counter("reco_events", "Events accepted, by type", ["event_type"], registry=r)
        self.events_rejected = Counter(
            "reco_events_rejected", "Event requests rejected", ["reason"], registry=r
        )
        self.events_online_failed = Counter(
            "reco_events_online_failed",
            "Accepted (logged) events whose online push failed",
            registry=r,
        )
        self._lifecycle(r)
        self._children: dict[tuple[object, ...], Any] = {}
        self.rate_limited = Counter(
            "reco_rate_limited", "Requests answered 429", ["key"], registry=r
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once (prometheus_client takes a lock and
        builds the key on every call; the request path records several per request). Only for
        metrics that are never cleared."""
        key = (id(metric), *labels)
        got = self._children.get(key)
        if got is None:
            got = self._children[key] = metric.labels(*labels)
        return got

    def record_served(
        self, ranked: Ranked, ages: Mapping[str, float], seconds: float, store_down: bool
    ) -> None:
        """One served recommendation: its path's latency and count, the fallback reason, and
        the age of each online feature it used."""
        self.child(self.path_latency, ranked.source).observe(seconds)
        self.child(self.served, ranked.source, ranked.strategy).inc()
        if store_down:
            self.fallbacks.labels("online_store_unavailable").inc()
        elif ranked.source == "popular":
            self.fallbacks.labels("nothing_known").inc()
        for name, age in ages.items():
            (self.list_age if name == "list" else self.child(self.feature_age, name)).observe(age)

    def _lifecycle(self, r: CollectorRegistry) -> None:
        """Model swaps, experiments, shadow runs and drift (issue: model lifecycle)."""
        self.model_swaps = Counter(
            "reco_model_swaps", "Hot swaps of the served model", ["outcome"], registry=r
        )
        self.exposures = Counter(
            "reco_exposures",
            "Responses logged as exposures, by experiment and variant ('' outside one)",
            ["experiment", "variant"],
            registry=r,
        )
        self.exposures_dropped = Counter(
            "reco_exposures_dropped", "Exposures not logged (queue full or disk error)", registry=r
        )
        self.experiment_weight = Gauge(
            "reco_experiment_weight",
            "Percent of users assigned to each variant of the running experiment",
            ["experiment", "variant", "model_version"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.shadow_runs = Counter(
            "reco_shadow_requests", "Shadow scoring, by outcome", ["outcome"], registry=r
        )
        self.two_stage_block = Histogram(
            "reco_two_stage_block_size",
            "Requests ranked together by the two-stage path (concurrent cold requests)",
            buckets=(1, 2, 4, 8, 16),
            registry=r,
        )
        self.shadow_latency = Histogram(
            "reco_shadow_duration_seconds",
            "The shadow candidate's time to rank (off the request path)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.shadow_overlap = Histogram(
            "reco_shadow_overlap",
            "Share of the served top-k the shadow candidate also returned",
            buckets=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.drift_psi = Gauge(
            "reco_drift_feature_psi",
            "PSI of a feature, recent vs training",
            ["feature"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.drift_ks = Gauge(
            "reco_drift_feature_ks",
            "KS statistic, recent vs training",
            ["feature"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.lists_stat = Gauge(
            "reco_lists_stat",
            "Figures of the live run's lists (coverage, gini, overlap_previous, score_p50, ...)",
            ["stat"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.monitor_suspicious = Gauge(
            "reco_monitor_suspicious",
            "1 when the last monitor report found drift",
            registry=r,
            multiprocess_mode="livemostrecent",
        )


def _values_shared() -> bool:
    """True when metric values live in files (prometheus_client's multiprocess mode, chosen
    when it was first imported; importing Feast also turns it on, with a directory of its
    own)."""
    return values.ValueClass is not values.MutexValue


def reset(gauge: Gauge, value: float = math.nan) -> None:
    """Forget every labelled series of ``gauge``. In multiprocess mode a series stays in this
    worker's file once written (prometheus_client cannot remove it there), so it is set to
    ``value`` first (NaN: ``max by`` ignores it), never left at its last value."""
    if _values_shared():
        for labels in list(gauge._metrics):  # no public way to list the children
            gauge.labels(*labels).set(value)
    with warnings.catch_warnings():  # "not implemented in multi-process mode": handled above
        warnings.simplefilter("ignore", UserWarning)
        gauge.clear()


_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def _drop_dead_workers(directory: Path) -> None:
    """Remove the live-gauge files of workers that are gone (a crashed worker never says so;
    uvicorn starts a new one with another pid)."""
    for path in directory.glob("gauge_live*.db"):
        m = _LIVE_FILE.match(path.name)
        if m is None:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))
        except PermissionError:
            pass  # alive, another user's


def exposition(metrics: Metrics, workers: int) -> tuple[bytes, str]:
    """The Prometheus text of this app; with several ``workers`` (``reco serve`` sets
    ``PROMETHEUS_MULTIPROC_DIR`` for them), every worker's values."""
    raw = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers <= 1 or not raw or not _values_shared():
        return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
    _drop_dead_workers(Path(raw))
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=raw)
    return generate_latest(registry), CONTENT_TYPE_LATEST
