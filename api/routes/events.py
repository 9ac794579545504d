"""POST /events and /events/batch: log durably, then push to the online store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter

from api.deps import RuntimeDep
from api.runtime import Runtime
from api.schemas import COMMON_ERRORS, EventAck, EventBatch, EventIn
from recommender.errors import InvalidRequest, UnknownItems
from recommender.events.records import Event, check_events
from recommender.serving import paths

router = APIRouter(tags=["events"], responses=COMMON_ERRORS)


async def _accept(rt: Runtime, events: list[EventIn]) -> EventAck:
    bundle, _, _ = rt.require()
    if len(events) > rt.settings.api.max_batch_events:
        rt.metrics.events_rejected.labels("batch_too_large").inc()
        raise InvalidRequest(
            f"{len(events)} events in one batch; the limit is {rt.settings.api.max_batch_events}"
        )
    now = datetime.now(timezone.utc)
    try:
        paths.check_items(bundle, [e.item_id for e in events])
        records = check_events(
            [Event(**e.model_dump()) for e in events],
            now,
            timedelta(seconds=rt.settings.api.max_event_future_seconds),
        )
    except InvalidRequest:
        rt.metrics.events_rejected.labels("invalid").inc()
        raise
    except UnknownItems:
        rt.metrics.events_rejected.labels("unknown_item").inc()
        raise
    online_ok, detail = await rt.sink.submit(records)  # durable first, then online
    for r in records:
        rt.metrics.events.labels(r["event_type"]).inc()
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
