"""User events (what ``POST /events`` accepts), without I/O: checks, log records, the new
recent-items lists to push, and the interactions a nightly run trains on.

Every event type marks the item as seen (it is no longer recommended); ``dislike`` is not a
positive signal, so it is neither folded in nor trained on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from recommender.data.ids import check_id
from recommender.errors import InvalidRequest

EVENT_TYPES = ("view", "click", "like", "purchase", "rating", "dislike")
NEGATIVE = frozenset({"dislike"})
# The plausible time range of an event: never before the Unix epoch, at most a day ahead of
# the receiving clock. POST /events refuses others (422); the nightly job quarantines them.
EARLIEST_EVENT = datetime(1970, 1, 1, tzinfo=timezone.utc)
FUTURE_SLACK = timedelta(days=1)
_DAYS = FUTURE_SLACK / timedelta(days=1)
TIME_RANGE = (  # for documentation (the OpenAPI schema)
    f"not before {EARLIEST_EVENT:%Y-%m-%dT%H:%M:%SZ}, not more than {_DAYS:g} "
    f"day{'' if _DAYS == 1 else 's'} after the server's clock"
)


@dataclass(frozen=True)
class Event:
    user_id: str
    item_id: str
    event_type: str
    timestamp: datetime | None = None
    value: float | None = None
    event_id: str | None = None
    recommendation_id: str | None = None  # the response the event answers (attribution)


def check_event_time(ts: datetime, now: datetime, max_future: timedelta = FUTURE_SLACK) -> datetime:
    """``ts`` in UTC (naive means UTC) if it lies in the plausible range: not before
    :data:`EARLIEST_EVENT`, not more than ``max_future`` (at most :data:`FUTURE_SLACK`) after
    ``now``; else :class:`ValueError` saying which bound it crosses.

    Example: ``check_event_time(datetime(1600, 1, 1), now)`` raises ("... before 1970-01-01").
    """
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    max_future = min(max_future, FUTURE_SLACK)
    # compared before any conversion: converting year 1 or 9999 across zones would overflow
    if ts < EARLIEST_EVENT:
        raise ValueError(
            f"timestamp {ts.isoformat()} is before {EARLIEST_EVENT:%Y-%m-%dT%H:%M:%SZ}, "
            "the earliest accepted"
        )
    if ts - now > max_future:
        raise ValueError(
            f"timestamp {ts.isoformat()} is more than {int(max_future.total_seconds())} s "
            "in the future"
        )
    return ts.astimezone(timezone.utc)


def check_events(
    events: Sequence[Event], now: datetime, max_future: timedelta
) -> list[dict[str, Any]]:
    """Log records for valid events; raise :class:`InvalidRequest` naming the first bad one.
    Timestamps must be plausible (:func:`check_event_time`; ``max_future`` is the tolerance);
    ids follow :mod:`recommender.data.ids` (logged without the whitespace around them)."""
    records = []
    for pos, ev in enumerate(events):
        where = f"event {pos}"
        if ev.event_type not in EVENT_TYPES:
            raise InvalidRequest(f"{where}: event_type must be one of {', '.join(EVENT_TYPES)}")
        try:
            ts = check_event_time(ev.timestamp or now, now, max_future)
        except ValueError as exc:
            raise InvalidRequest(f"{where}: {exc}") from None
        if ev.event_type == "rating" and ev.value is None:
            raise InvalidRequest(f"{where}: a rating event needs a value")
        ids = {}
        for key in ("user_id", "item_id"):
            try:
                ids[key] = check_id(getattr(ev, key))
            except ValueError as exc:
                raise InvalidRequest(f"{where}: {key} {exc}") from None
        records.append(
            {
                "event_id": ev.event_id or uuid.uuid4().hex,
                "user_id": ids["user_id"],
                "item_id": ids["item_id"],
                "event_type": ev.event_type,
                "value": ev.value,
                "event_timestamp": ts,
                "received_at": now,
                "recommendation_id": ev.recommendation_id,
            }
        )
    return records


def merge_recent(
    current: Mapping[str, Sequence[str]], records: Sequence[Mapping[str, Any]], limit: int
) -> dict[str, list[str]]:
    """Per user: the new items first (newest event first), then the stored ones, deduplicated
    and cut to ``limit``."""
    by_user: dict[str, list[tuple[datetime, str]]] = {}
    for r in records:
        by_user.setdefault(r["user_id"], []).append((r["event_timestamp"], r["item_id"]))
    out = {}
    for user, pairs in by_user.items():
        newest = [item for _, item in sorted(pairs, key=lambda p: p[0], reverse=True)]
        out[user] = list(dict.fromkeys([*newest, *current.get(user, [])]))[:limit]
    return out


def events_to_interactions(events: pd.DataFrame) -> pd.DataFrame:
    """Logged events as raw interactions (``user_id, item_id, rating, timestamp``) for the
    canonical interactions table: ratings keep their value, other positive events weigh 1."""
    positive = events[~events["event_type"].isin(NEGATIVE)]
    rating = positive["value"].where(positive["event_type"] == "rating", 1.0)
    return pd.DataFrame(
        {
            "user_id": positive["user_id"].astype(str),
            "item_id": positive["item_id"].astype(str),
            "rating": rating.fillna(1.0).astype("float32"),
            "timestamp": positive["event_timestamp"],
        }
    ).reset_index(drop=True)
