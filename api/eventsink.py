"""Group commit for events: concurrent requests share one fsync and one Feast push.

Each request hands its validated records to the sink and waits. One worker takes everything
queued at that moment, appends it to the durable log (one write, one fsync), then reads the
users' stored recent items, merges the new ones in, and pushes all lists in one Feast push;
then it answers every waiting request. A request is acknowledged only after its records are
on disk; a failed push is reported (``online: false``), never hidden.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import anyio
from redis.exceptions import RedisError

from api.online import OnlineStore
from api.telemetry import Metrics
from recommender.errors import EventLogUnavailable, FeatureStoreUnavailable
from recommender.events.log import EventLog
from recommender.events.records import merge_recent

log = logging.getLogger(__name__)
Records = list[dict[str, Any]]
Pusher = Callable[[Mapping[str, Sequence[str]], datetime], None]
MAX_GROUP = 5000
T = TypeVar("T")


MAX_PENDING_PUSHES = 64  # online pushes queued behind a slow store; beyond, groups skip it
Result = tuple[bool, str | None]


class EventSink:
    """``push_wait`` (seconds): how long a request waits for its group's online push once the
    events are durable. A slow or paused Redis then costs that wait, not the pause: the
    request is answered ``online: false`` and the push goes on behind it, while the next
    groups are appended to the log at once. Pushes stay in order (each starts after the
    previous one ends: they read and merge recent items); at most ``MAX_PENDING_PUSHES`` wait
    behind a stalled one, later groups are logged but not pushed (counted, said in the
    answer). No push failure, expected or not, stops the sink."""

    def __init__(
        self,
        events: EventLog,
        metrics: Metrics,
        recent_max: int,
        push: Pusher,
        push_wait: float = 1.0,
    ) -> None:
        self.events, self.metrics, self.recent_max, self.push = events, metrics, recent_max, push
        self.push_wait = push_wait
        self.online: OnlineStore | None = None
        self.queue: asyncio.Queue[tuple[Records, asyncio.Future[Result]]]
        self.queue = asyncio.Queue()
        self._pushing: asyncio.Task[Result] | None = None
        self._tasks: set[asyncio.Task[object]] = set()  # pushes and answers still running

    async def submit(self, records: Records) -> Result:
        """Wait until ``records`` are durable (and pushed, if possible): (online, detail)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        await self.queue.put((records, future))
        return await future

    async def run(self) -> None:
        while True:
            group = [await self.queue.get()]
            while not self.queue.empty() and len(group) < MAX_GROUP:
                group.append(self.queue.get_nowait())
            records = [r for recs, _ in group for r in recs]
            try:
                await anyio.to_thread.run_sync(self.events.append, records)
            except OSError as exc:
                log.error("event log write failed, %d events refused: %s", len(records), exc)
                self.metrics.errors.labels("event_log").inc()
                error = EventLogUnavailable(f"events not accepted: the event log failed ({exc})")
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            futures = [future for _, future in group]
            pending = sum(1 for t in self._tasks if t.get_name() == "event-push")
            if pending >= MAX_PENDING_PUSHES:
                self.metrics.events_online_failed.inc(len(records))
                _answer(futures, (False, "logged, not yet online: the online store is behind"))
                continue
            pushing = self._spawn(self._push_after(self._pushing, records), "event-push")
            self._pushing = pushing
            self._spawn(self._answer_when_pushed(futures, pushing), "event-answer")

    def _spawn(self, coro: Coroutine[object, object, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]
        return task

    async def _answer_when_pushed(
        self, futures: list[asyncio.Future[Result]], pushing: asyncio.Task[Result]
    ) -> None:
        done, _ = await asyncio.wait({pushing}, timeout=self.push_wait)
        if done and not pushing.cancelled():
            result = pushing.result()
        elif done:
            result = (False, "logged, not yet online: the API is shutting down")
        else:
            result = (
                False,
                f"logged, not yet online: the online store did not answer within "
                f"{self.push_wait:g} s (the push goes on)",
            )
        _answer(futures, result)

    async def close(self, seconds: float = 1.0) -> None:
        """Let running pushes finish for up to ``seconds``, then cancel what is left (their
        events are in the log: the nightly ingests them whatever happens here)."""
        tasks = list(self._tasks)
        if tasks:
            _, left = await asyncio.wait(tasks, timeout=seconds)
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)

    async def _push_after(self, previous: asyncio.Task[Result] | None, records: Records) -> Result:
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        return await self._push(records)

    async def _push(self, records: Records) -> Result:
        if self.online is None:
            return False, "logged, not yet online: no online store"
        try:
            users = list(dict.fromkeys(r["user_id"] for r in records))
            current = await self.online.recent_items(users)
            lists = merge_recent(current, records, self.recent_max)
            await anyio.to_thread.run_sync(self.push, lists, datetime.now(timezone.utc))
        except (FeatureStoreUnavailable, RedisError, OSError) as exc:
            self.metrics.events_online_failed.inc(len(records))
            return False, f"logged, not yet online: {exc}"
        except Exception as exc:  # noqa: BLE001 - a push must never stop the sink
            log.exception("online push of %d events failed", len(records))
            self.metrics.events_online_failed.inc(len(records))
            return False, f"logged, not yet online: {type(exc).__name__}: {exc}"
        return True, None


def _answer(futures: list[asyncio.Future[Result]], result: Result) -> None:
    for future in futures:
        if not future.done():
            future.set_result(result)
