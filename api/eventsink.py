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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

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


class EventSink:
    """``push_wait`` (seconds): how long a request waits for its group's online push once the
    events are durable. A slow or paused Redis then costs that wait, not the pause: the
    request is answered ``online: false`` and the push goes on behind it. Pushes stay in
    order (each starts after the previous one ends: they read and merge recent items)."""

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
        self.queue: asyncio.Queue[tuple[Records, asyncio.Future[tuple[bool, str | None]]]]
        self.queue = asyncio.Queue()
        self._pushing: asyncio.Task[tuple[bool, str | None]] | None = None

    async def submit(self, records: Records) -> tuple[bool, str | None]:
        """Wait until ``records`` are durable (and pushed, if possible): (online, detail)."""
        future: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
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
            pushing = asyncio.create_task(self._push_after(self._pushing, records))
            self._pushing = pushing
            done, _ = await asyncio.wait({pushing}, timeout=self.push_wait)
            result = (
                pushing.result()
                if done
                else (
                    False,
                    f"logged, not yet online: the online store did not answer within "
                    f"{self.push_wait:g} s (the push goes on)",
                )
            )
            for _, future in group:
                if not future.done():
                    future.set_result(result)

    async def _push_after(
        self, previous: asyncio.Task[tuple[bool, str | None]] | None, records: Records
    ) -> tuple[bool, str | None]:
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        return await self._push(records)

    async def _push(self, records: Records) -> tuple[bool, str | None]:
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
        return True, None
