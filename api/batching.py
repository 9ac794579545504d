"""Concurrent cold requests ranked together: the two-stage path costs per user about 2.6x
less in a block of 8 users than alone (numpy's and LightGBM's per-call costs are shared;
``python -m bench.rank_batch``, docs/benchmarks.md), so requests that need a two-stage ranking
at the same moment are ranked as one block.

A request's pure decision (:func:`recommender.serving.hybrid.recommend_steps`) yields its
:class:`~recommender.serving.rerank.TwoStageJob`; :meth:`TwoStageBatcher.rank` queues it and
ranks, one event-loop turn later, every job queued by then (at most ``max_batch``), on the
loop's thread as a single request's ranking always ran (nothing waits for a thread). While
other requests that will likely rank (:meth:`TwoStageBatcher.expecting`) are still reading
the store, the block waits for them on a timer, at most ``HOLD_SECONDS``; a lone request is
not held. Under load the jobs that arrive while a block is ranked form the next block. A
block that fails is ranked again job by job, so one request's error stays its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from prometheus_client import Histogram

from recommender.serving.rerank import Steps, TwoStageJob, TwoStageResult, two_stage_many

log = logging.getLogger(__name__)
T = TypeVar("T")
# the longest a due block waits for requests still reading the store, and the step it waits in
HOLD_SECONDS = 0.002
HOLD_STEP_SECONDS = 0.0002
Waiting = tuple[TwoStageJob, "asyncio.Future[TwoStageResult]"]


class TwoStageBatcher:
    def __init__(
        self, sizes: Histogram, max_batch: int = 16, hold_seconds: float = HOLD_SECONDS
    ) -> None:
        self.sizes, self.max_batch, self.hold_seconds = sizes, max_batch, hold_seconds
        self.waiting: list[Waiting] = []
        self.scheduled = False
        self.expected = 0  # requests likely to ask for a ranking, waiting ones included
        self._since: float | None = None  # when the waiting block was first due

    @contextmanager
    def expecting(self, likely: bool) -> Iterator[None]:
        """Around a request that will likely ask for a ranking (it has items of its own):
        while such requests are still reading the store, a due block waits for them (at most
        ``hold_seconds``); without the hold, concurrent requests fragmented into blocks of 2-3
        because their store reads came back a turn apart."""
        self.expected += likely
        try:
            yield
        finally:
            self.expected -= likely

    async def run(self, steps: Steps[T]) -> T:
        """Drive ``steps`` to its answer, ranking each job it asks for with the others'."""
        try:
            job = next(steps)
            while True:
                job = steps.send(await self.rank(job))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def rank(self, job: TwoStageJob) -> TwoStageResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TwoStageResult] = loop.create_future()
        self.waiting.append((job, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._rank_waiting)
        return await future

    def _rank_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._since = now if self._since is None else self._since
        coming = min(self.expected, self.max_batch) > len(self.waiting)
        if coming and now - self._since < self.hold_seconds:
            loop.call_later(HOLD_STEP_SECONDS, self._rank_waiting)  # a timer: the loop sleeps
            return
        self._since = None
        block, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch :]
        self.scheduled = bool(self.waiting)
        if self.waiting:
            loop.call_soon(self._rank_waiting)
        groups: dict[tuple[int, int], list[Waiting]] = {}
        for job, future in block:
            if not future.cancelled():  # the client went away
                groups.setdefault((id(job.bundle), id(job.items)), []).append((job, future))
        for group in groups.values():  # one per model (an experiment serves two)
            self.sizes.observe(len(group))
            try:
                results = two_stage_many([job for job, _ in group])
            except Exception:  # noqa: BLE001 - each request gets its own answer or error
                if len(group) > 1:
                    log.exception("a two-stage block of %d failed; ranking alone", len(group))
                for job, future in group:
                    self._settle(future, job)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)

    @staticmethod
    def _settle(future: asyncio.Future[TwoStageResult], job: TwoStageJob) -> None:
        try:
            result = two_stage_many([job])[0]
        except Exception as exc:  # noqa: BLE001 - handed to the request, answered there
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)
