"""The durable event log and the event rules (pure), including a torn last line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from recommender.errors import InvalidRequest
from recommender.events.log import (
    EventLog,
    commit_watermark,
    quarantined_count,
    read_events,
    read_new_events,
    read_quarantine,
)
from recommender.events.records import Event, check_events, events_to_interactions, merge_recent

NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


def records(n: int, user: str = "u") -> list[dict]:
    return check_events(
        [Event(user, f"i{j}", "view", NOW - timedelta(minutes=n - j)) for j in range(n)],
        NOW,
        timedelta(minutes=5),
    )


def test_appended_events_read_back_and_dedupe(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    recs = records(3)
    assert log.append(recs) == 3 and log.append(recs[:1]) == 1
    got = read_events(tmp_path)
    assert list(got["event_id"]) == [r["event_id"] for r in recs]
    assert got["event_timestamp"].dt.tz is not None


def test_torn_last_line_is_skipped_until_complete(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.append(records(2))
    segment = next(tmp_path.glob("events-*.jsonl"))
    with segment.open("ab") as fh:
        fh.write(b'{"event_id": "torn", "user_id"')  # a crash mid-write, never acknowledged
    assert len(read_events(tmp_path)) == 2


def test_watermark_returns_only_new_events(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.append(records(2, "a"))
    first, mark = read_new_events(tmp_path)
    assert len(first) == 2
    assert len(read_new_events(tmp_path)[0]) == 2  # not committed: read again
    commit_watermark(tmp_path, mark)
    log.append(records(1, "b"))
    new, _ = read_new_events(tmp_path)
    assert list(new["user_id"]) == ["b"]


def test_event_checks() -> None:
    future = Event("u", "i", "view", NOW + timedelta(hours=1))
    with pytest.raises(InvalidRequest, match="event 0: .* in the future"):
        check_events([future], NOW, timedelta(minutes=5))
    with pytest.raises(InvalidRequest, match="event 1: a rating event needs a value"):
        check_events([Event("u", "i", "view"), Event("u", "i", "rating")], NOW, timedelta(0))
    naive = check_events([Event("u", "i", "like", datetime(2026, 1, 1))], NOW, timedelta(0))
    assert naive[0]["event_timestamp"].tzinfo is not None and naive[0]["event_id"]


def test_recent_lists_put_the_newest_first_and_cap() -> None:
    recs = records(3)  # i0 oldest ... i2 newest
    merged = merge_recent({"u": ["i1", "x", "y"]}, recs, limit=4)
    assert merged == {"u": ["i2", "i1", "i0", "x"]}


def test_events_become_interactions_without_dislikes() -> None:
    recs = check_events(
        [
            Event("u", "i1", "rating", value=2.0),
            Event("u", "i2", "dislike"),
            Event("u", "i3", "purchase"),
        ],
        NOW,
        timedelta(0),
    )
    import pandas as pd

    inter = events_to_interactions(pd.DataFrame(recs))
    assert list(inter["item_id"]) == ["i1", "i3"] and list(inter["rating"]) == [2.0, 1.0]


def test_a_failed_append_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = EventLog(tmp_path)
    log.append(records(1, "kept"))

    def broken_disk(fd: int) -> None:  # the process edge: the disk reports an I/O error
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("recommender.events.log.os.fsync", broken_disk)
    with pytest.raises(OSError):
        log.append(records(3, "refused"))
    monkeypatch.undo()
    assert list(read_events(tmp_path)["user_id"]) == ["kept"]  # refused events never ingested


def test_bad_lines_are_quarantined_with_a_count_never_block_ingestion(tmp_path: Path) -> None:
    """Issue 17.2: one event stamped 1600-01-01 in the log made every later night fail with
    OutOfBoundsDatetime. Bad lines go to quarantine/ with their reason; the rest is read."""
    log = EventLog(tmp_path)
    good = records(2)
    log.append(good)
    old = {**good[0], "event_id": "ancient", "event_timestamp": "1600-01-01T00:00:00Z"}
    odd_type = {**good[0], "event_id": "odd", "event_type": "teleport"}
    no_user = {**good[0], "event_id": "nouser", "user_id": None}
    log.append([old, odd_type, no_user])
    segment = next(tmp_path.glob("events-*.jsonl"))
    with segment.open("ab") as fh:
        fh.write(b"this is not json\n")
    events, mark = read_new_events(tmp_path)
    assert list(events["event_id"]) == [r["event_id"] for r in good]
    assert events["event_timestamp"].min() > pd.Timestamp("2000-01-01", tz="UTC")
    assert len(events_to_interactions(events)) == 2
    assert quarantined_count(tmp_path) == 4
    reasons = [r["reason"] for r in read_quarantine(tmp_path)]
    assert any("event_timestamp" in r for r in reasons) and any("JSON" in r for r in reasons)
    read_new_events(tmp_path)  # read again before the commit: quarantine stays exact
    assert quarantined_count(tmp_path) == 4
    commit_watermark(tmp_path, mark)
    assert len(read_events(tmp_path)) == 2  # the full read skips them too


def test_lines_whose_ids_break_the_id_rule_are_quarantined(tmp_path: Path) -> None:
    """Issue 28.3: the nightly's event ingest follows the id rule of the API and of file
    ingest; a line written by hand (or by an older server) with an id the API would refuse is
    quarantined, never trained on. Whitespace around an id is removed later, as for files."""
    log = EventLog(tmp_path)
    good = records(1)
    long_user = {**good[0], "event_id": "long", "user_id": "u" * 129}
    control = {**good[0], "event_id": "control", "item_id": "i\x01"}
    padded = {**good[0], "event_id": "padded", "user_id": " u "}
    log.append([*good, long_user, control, padded])
    events, _ = read_new_events(tmp_path)
    assert list(events["event_id"]) == [good[0]["event_id"], "padded"]
    reasons = {r["reason"] for r in read_quarantine(tmp_path)}
    assert reasons == {
        "user_id is 129 characters long (at most 128)",
        "item_id has a control character (U+0000-U+001F, U+007F)",
    }
