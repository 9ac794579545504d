"""The event sink's promises with a real event log on disk: an acknowledged event is durable,
a push that fails in a way nobody expected answers ``online: false`` and the sink keeps
taking events, a stalled push costs its wait and does not hold up the next groups."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from api.eventsink import EventSink
from api.telemetry import Metrics
from recommender.events.log import EventLog, read_records
from recommender.events.records import Event, check_events


class _Store:
    """The sink's reading side of the online store: nobody has recent items yet."""

    async def recent_items(self, users: Sequence[str]) -> dict[str, list[str]]:
        return {u: [] for u in users}


def _record(i: int) -> dict[str, Any]:
    """One event's log record, as POST /events makes it."""
    now = datetime.now(timezone.utc)
    return check_events([Event(f"u{i}", "i1", "click", event_id=f"e{i}")], now, timedelta(0))[0]


def _sink(tmp_path: Path, push: Any, wait: float = 0.3) -> EventSink:
    sink = EventSink(EventLog(tmp_path / "events"), Metrics(), 10, push, push_wait=wait)
    sink.online = _Store()  # type: ignore[assignment]
    return sink


def test_an_unexpected_push_failure_never_stops_the_sink(tmp_path: Path) -> None:
    calls: list[int] = []

    def push(lists: Mapping[str, Sequence[str]], now: datetime) -> None:
        calls.append(len(lists))
        if len(calls) == 1:
            raise KeyError("a Feast error nobody expected")

    async def scenario() -> list[tuple[bool, str | None]]:
        sink = _sink(tmp_path, push)
        runner = asyncio.create_task(sink.run())
        try:
            first = await asyncio.wait_for(sink.submit([_record(1)]), 5)
            second = await asyncio.wait_for(sink.submit([_record(2)]), 5)
        finally:
            await sink.close()
            runner.cancel()
        return [first, second]

    first, second = asyncio.run(scenario())
    assert first[0] is False and "KeyError" in (first[1] or "")
    assert second == (True, None)  # before the fix, this one never got an answer
    assert [r["event_id"] for r in read_records(tmp_path / "events", "events")] == ["e1", "e2"]


def test_a_stalled_push_costs_its_wait_and_later_groups_are_logged_at_once(
    tmp_path: Path,
) -> None:
    release = threading.Event()

    def push(lists: Mapping[str, Sequence[str]], now: datetime) -> None:
        release.wait(10)  # Redis stalled

    async def scenario() -> tuple[list[float], list[tuple[bool, str | None]]]:
        sink = _sink(tmp_path, push, wait=0.3)
        runner = asyncio.create_task(sink.run())
        seconds, answers = [], []
        try:
            for i in range(3):
                t0 = time.perf_counter()
                answers.append(await asyncio.wait_for(sink.submit([_record(i)]), 5))
                seconds.append(time.perf_counter() - t0)
        finally:
            release.set()
            await sink.close()
            runner.cancel()
        return seconds, answers

    seconds, answers = asyncio.run(scenario())
    assert all(a[0] is False and "did not answer within 0.3 s" in (a[1] or "") for a in answers)
    assert max(seconds) < 1.5, seconds  # each waits its own push_wait, not the stall
    assert len(read_records(tmp_path / "events", "events")) == 3  # all durable
