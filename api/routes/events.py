"""POST /events and /events/batch: log durably, then push to the online store."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import anyio
from fastapi import APIRouter
from redis.exceptions import RedisError

from api.deps import RuntimeDep
from api.runtime import Runtime
from api.schemas import COMMON_ERRORS, EventAck, EventBatch, EventIn
from recommender import serving
from recommender.errors import (
    EventLogUnavailable,
    FeatureStoreUnavailable,
    InvalidRequest,
    UnknownItems,
)
from recommender.events import Event, check_events, merge_recent
from recommender.store import push_recent_lists

router = APIRouter(tags=["events"], responses=COMMON_ERRORS)
log = logging.getLogger(__name__)


async def _accept(rt: Runtime, events: list[EventIn]) -> EventAck:
    bundle, _, online = rt.require()
    if len(events) > rt.settings.max_batch_events:
        rt.metrics.events_rejected.labels("batch_too_large").inc()
        raise InvalidRequest(
            f"{len(events)} events in one batch; the limit is {rt.settings.max_batch_events}"
        )
    now = datetime.now(timezone.utc)
    try:
        serving.check_items(bundle, [e.item_id for e in events])
        records = check_events(
            [Event(**e.model_dump()) for e in events],
            now,
            timedelta(seconds=rt.settings.max_event_future_seconds),
        )
    except InvalidRequest:
        rt.metrics.events_rejected.labels("invalid").inc()
        raise
    except UnknownItems:
        rt.metrics.events_rejected.labels("unknown_item").inc()
        raise
    try:  # durable first: an acknowledged event is on disk
        await anyio.to_thread.run_sync(rt.events.append, records)
    except OSError as exc:
        log.error("event log write failed, %d events refused: %s", len(records), exc)
        rt.metrics.errors.labels("event_log").inc()
        raise EventLogUnavailable(f"events not accepted: the event log failed ({exc})") from exc
    for r in records:
        rt.metrics.events.labels(r["event_type"]).inc()
    online_ok, detail = True, None
    try:
        async with rt.push_lock:  # read-modify-write of recent lists, one push at a time
            users = list(dict.fromkeys(r["user_id"] for r in records))
            current = await online.recent_items(users)
            lists = merge_recent(current, records, rt.settings.recent_items_max)
            assert rt.store is not None
            await anyio.to_thread.run_sync(
                push_recent_lists, rt.store, lists, datetime.now(timezone.utc)
            )
    except (FeatureStoreUnavailable, RedisError, OSError) as exc:
        online_ok, detail = False, f"logged, not yet online: {exc}"
        rt.metrics.events_online_failed.inc(len(records))
    return EventAck(
        accepted=len(records),
        event_ids=[r["event_id"] for r in records],
        online=online_ok,
        detail=detail,
    )


@router.post("/events", status_code=202, response_model=EventAck)
async def post_event(rt: RuntimeDep, event: EventIn) -> EventAck:
    """One user event. 202 means it is durably logged (the nightly run trains on it); with
    ``online: true`` the next /recommendations already reflects it."""
    return await _accept(rt, [event])


@router.post("/events/batch", status_code=202, response_model=EventAck)
async def post_events(rt: RuntimeDep, batch: EventBatch) -> EventAck:
    """Up to ``RECO_MAX_BATCH_EVENTS`` events at once, all or none."""
    return await _accept(rt, batch.events)
