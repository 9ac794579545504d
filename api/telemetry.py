"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        )
        self.model_loaded = Gauge("reco_model_loaded", "1 when a model is loaded", registry=r)
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
            "reco_catalog_age_seconds", "Seconds since item metadata was refreshed", registry=r
        )
        self.unavailable_items = Gauge(
            "reco_catalog_unavailable_items", "Items marked unavailable", registry=r
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
        self.rate_limited = Counter(
            "reco_rate_limited", "Requests answered 429", ["key"], registry=r
        )

    def record_served(
        self, ranked: Ranked, ages: Mapping[str, float], seconds: float, store_down: bool
    ) -> None:
        """One served recommendation: its path's latency and count, the fallback reason, and
        the age of each online feature it used."""
        self.path_latency.labels(ranked.source).observe(seconds)
        self.served.labels(ranked.source, ranked.strategy).inc()
        if store_down:
            self.fallbacks.labels("online_store_unavailable").inc()
        elif ranked.source == "popular":
            self.fallbacks.labels("nothing_known").inc()
        for name, age in ages.items():
            (self.list_age if name == "list" else self.feature_age.labels(name)).observe(age)

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
        )
        self.shadow_runs = Counter(
            "reco_shadow_requests", "Shadow scoring, by outcome", ["outcome"], registry=r
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
        )
        self.drift_ks = Gauge(
            "reco_drift_feature_ks", "KS statistic, recent vs training", ["feature"], registry=r
        )
        self.lists_stat = Gauge(
            "reco_lists_stat",
            "Figures of the live run's lists (coverage, gini, overlap_previous, score_p50, ...)",
            ["stat"],
            registry=r,
        )
        self.monitor_suspicious = Gauge(
            "reco_monitor_suspicious", "1 when the last monitor report found drift", registry=r
        )
