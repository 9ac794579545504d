"""The plausible time range of an event (pure): one definition for the door and the log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from recommender.errors import InvalidRequest
from recommender.events.records import (
    EARLIEST_EVENT,
    FUTURE_SLACK,
    Event,
    check_event_time,
    check_events,
)

NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


def test_the_range_is_the_epoch_to_a_day_ahead() -> None:
    assert check_event_time(EARLIEST_EVENT, NOW) == EARLIEST_EVENT
    assert check_event_time(NOW + FUTURE_SLACK, NOW) == NOW + FUTURE_SLACK
    # naive means UTC; other zones come back as UTC
    assert check_event_time(datetime(2024, 1, 1), NOW) == datetime(2024, 1, 1, tzinfo=timezone.utc)
    paris = datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert check_event_time(paris, NOW) == datetime(2024, 1, 1, tzinfo=timezone.utc)
    # every accepted time is one pandas can hold (the nightly job reads them)
    pd.Timestamp(check_event_time(EARLIEST_EVENT, NOW))


@pytest.mark.parametrize(
    ("ts", "needle"),
    [
        (datetime(1600, 1, 1, tzinfo=timezone.utc), "before 1970-01-01T00:00:00Z"),
        (EARLIEST_EVENT - timedelta(microseconds=1), "before 1970-01-01T00:00:00Z"),
        # near the ends of datetime's range: refused, never an OverflowError
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "before 1970"),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=23))), "in the future"),
        (NOW + FUTURE_SLACK + timedelta(seconds=1), "in the future"),
    ],
)
def test_implausible_times_are_refused_with_the_range(ts: datetime, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        check_event_time(ts, NOW)


def test_check_events_applies_the_range_and_never_exceeds_a_day_ahead() -> None:
    ancient = Event("u", "i", "view", datetime(1600, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(InvalidRequest, match="event 0: timestamp .* before 1970"):
        check_events([ancient], NOW, timedelta(minutes=5))
    soon = Event("u", "i", "view", NOW + timedelta(minutes=10))
    with pytest.raises(InvalidRequest, match="event 0: timestamp .* in the future"):
        check_events([soon], NOW, timedelta(minutes=5))  # the configured tolerance
    later = Event("u", "i", "view", NOW + timedelta(days=2))
    with pytest.raises(InvalidRequest, match="in the future"):
        check_events([later], NOW, timedelta(days=30))  # more than the ceiling: capped
    [record] = check_events([Event("u", "i", "view", EARLIEST_EVENT)], NOW, timedelta(0))
    assert record["event_timestamp"] == EARLIEST_EVENT


def test_events_follow_the_id_rule_of_ingest() -> None:
    ok = Event(" u ", "i", "view", NOW)
    assert check_events([ok], NOW, timedelta(0))[0]["user_id"] == "u"  # as ingest strips it
    with pytest.raises(InvalidRequest, match="event 1: item_id is 129 characters long"):
        check_events([ok, Event("u", "i" * 129, "view", NOW)], NOW, timedelta(0))
