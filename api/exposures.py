"""Experiments and shadow runs inside the API, off the request's critical path.

* :class:`ExposureSink`: every response is an exposure (``recommendation_id``, user, variant,
  model, items). Requests only append to an in-memory batch; a background task writes the
  batch to the exposure log (JSON lines, one write and one fsync per batch) every
  ``exposure_flush_seconds``, and once more at shutdown. A crash loses at most that window.
* :class:`ShadowRunner`: a sampled request is scored again by the shadow candidate in one
  worker thread after the response is built; when the worker is busy the sample is dropped
  (counted), never queued behind live traffic.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio

from api.telemetry import Metrics
from recommender.events.log import EventLog
from recommender.serving.paths import Ranked

log = logging.getLogger(__name__)


class ExposureSink:
    def __init__(
        self, events: EventLog, metrics: Metrics, flush_seconds: float, max_pending: int = 100_000
    ) -> None:
        self.log, self.metrics = events, metrics
        self.flush_seconds, self.max_pending = flush_seconds, max_pending
        self.pending: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        if len(self.pending) >= self.max_pending:
            self.metrics.exposures_dropped.inc()
            return
        self.pending.append(record)
        self.metrics.exposures.labels(record["experiment"] or "", record["variant"] or "").inc()

    async def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            await anyio.to_thread.run_sync(self.log.append, batch)
        except OSError as exc:
            log.error("exposure log write failed, %d exposures lost: %s", len(batch), exc)
            self.metrics.exposures_dropped.inc(len(batch))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()


class ShadowRunner:
    """One worker thread; at most one shadow request in flight, the rest dropped."""

    def __init__(self, metrics: Metrics, shadow_log: EventLog) -> None:
        self.metrics, self.log = metrics, shadow_log
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="shadow")
        self.busy = threading.Semaphore(1)

    def submit(self, score: Callable[[], Ranked], live: Ranked, record: dict[str, Any]) -> bool:
        if not self.busy.acquire(blocking=False):
            self.metrics.shadow_runs.labels("dropped_busy").inc()
            return False
        self.pool.submit(self._run, score, live, record)
        return True

    def _run(self, score: Callable[[], Ranked], live: Ranked, record: dict[str, Any]) -> None:
        try:
            t0 = time.perf_counter()
            ranked = score()
            seconds = time.perf_counter() - t0
            k = max(len(live.item_ids), 1)
            share = len(set(live.item_ids) & set(ranked.item_ids)) / k
            self.metrics.shadow_latency.observe(seconds)
            self.metrics.shadow_overlap.observe(share)
            self.metrics.shadow_runs.labels("scored").inc()
            record.update(
                shadow_item_ids=list(ranked.item_ids),
                shadow_source=ranked.source,
                overlap=round(share, 4),
                shadow_ms=round(seconds * 1000, 3),
            )
            self.log.append([record])
        except Exception:  # noqa: BLE001 - a failing candidate must never touch live serving
            log.exception("shadow scoring failed")
            self.metrics.shadow_runs.labels("failed").inc()
        finally:
            self.busy.release()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
