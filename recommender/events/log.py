"""The durable offline event log: append-only JSON-lines segments, fsync'ed before an ack.

``POST /events`` appends here first (an acknowledged event is on disk) and then pushes to the
online store. Each process writes its own segment per UTC day
(``events-<YYYYMMDD>-<pid>-<token>.jsonl``), so concurrent writers never interleave. A line
is written with one ``write`` and ends in ``\\n``; a torn last line (a crash mid-write, never
acknowledged) is skipped by readers. The nightly job ingests new complete lines since its
watermark (byte offsets per segment), so a segment can be read while it is still growing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from recommender.data.ids import id_problem, strip_id
from recommender.events.records import EARLIEST_EVENT, EVENT_TYPES, FUTURE_SLACK
from recommender.fileio import write_text_atomic

log = logging.getLogger(__name__)
WATERMARK = "ingested.json"
QUARANTINE = "quarantine"
COLUMNS = [
    "event_id",
    "user_id",
    "item_id",
    "event_type",
    "value",
    "event_timestamp",
    "received_at",
    "recommendation_id",
]


class EventLog:
    """Appends event records (dicts) to this process's current segment, durably."""

    def __init__(self, directory: Path, fsync: bool = True, prefix: str = "events") -> None:
        self.directory = directory
        self.prefix = prefix
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._day = ""
        self._token = secrets.token_hex(3)
        directory.mkdir(parents=True, exist_ok=True)

    def _segment_fd(self, now: datetime) -> int:
        day = f"{now:%Y%m%d}"
        if self._fd is None or day != self._day:
            self.close()
            path = self.directory / f"{self.prefix}-{day}-{os.getpid()}-{self._token}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._day = day
            if self.fsync:  # the new directory entry must survive a crash too
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        return self._fd

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Write the records and fsync; return how many. Raises OSError if not durable, after
        cutting the segment back to where it was, so refused events are never ingested."""
        data = b"".join(orjson.dumps(r, option=orjson.OPT_UTC_Z) + b"\n" for r in records)
        if not data:
            return 0
        with self._lock:
            fd = self._segment_fd(datetime.now(timezone.utc))
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        return data.count(b"\n")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _segments(directory: Path, prefix: str = "events") -> list[Path]:
    return sorted(directory.glob(f"{prefix}-*.jsonl")) if directory.exists() else []


def read_records(directory: Path, prefix: str) -> list[dict[str, Any]]:
    """Every complete record of the ``prefix`` segments in ``directory`` (any log kind)."""
    records: list[dict[str, Any]] = []
    for path in _segments(directory, prefix):
        records += _read_from(path, 0)[0]
    return records  # any kind of log: no event rules applied


def _read_from(path: Path, offset: int) -> tuple[list[dict[str, Any]], list[Rejected], int]:
    """Complete lines after ``offset``: the records, the lines that are not JSON objects, and
    the new offset."""
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1  # a torn last line is not complete yet (or never will be)
    records, bad = [], []
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            bad.append(Rejected(line.decode("utf-8", "replace"), "not a JSON line"))
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad.append(Rejected(line.decode("utf-8", "replace"), "not a JSON object"))
    return records, bad, offset + end


@dataclass(frozen=True)
class Rejected:
    """A log line that cannot be ingested, and why."""

    line: str
    reason: str


def _problem(record: Mapping[str, Any]) -> str | None:
    """Why ``record`` cannot become an interaction, or None. The API checks the same at the
    door; this guards the nightly job against lines written before that, or by hand."""
    for key in ("event_id", "user_id", "item_id"):
        if not isinstance(record.get(key), str) or not record[key]:
            return f"{key} missing or not a string"
    for key in ("user_id", "item_id"):  # the id rule of file ingest (ingest strips later)
        problem = id_problem(strip_id(record[key]))
        if problem is not None:
            return f"{key} {problem}"
    if record.get("event_type") not in EVENT_TYPES:
        return f"event_type {record.get('event_type')!r} is not one of {', '.join(EVENT_TYPES)}"
    for key in ("event_timestamp", "received_at"):
        if key == "received_at" and record.get(key) is None:
            continue  # optional
        try:
            ts = pd.Timestamp(record.get(key))
        except (ValueError, TypeError, OverflowError):
            return f"{key} {record.get(key)!r} is not an ISO 8601 time"
        if ts is pd.NaT or ts.tzinfo is None:
            return f"{key} {record.get(key)!r} is not an ISO 8601 time with a zone"
        if not EARLIEST_EVENT <= ts.to_pydatetime() <= datetime.now(timezone.utc) + FUTURE_SLACK:
            return f"{key} {record.get(key)!r} is outside {EARLIEST_EVENT:%Y-%m-%d} .. now + 1 day"
    value = record.get("value")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        return f"value {value!r} is not a finite number"
    return None


def _split(
    records: list[dict[str, Any]], bad: list[Rejected]
) -> tuple[list[dict[str, Any]], list[Rejected]]:
    good = []
    for record in records:
        reason = _problem(record)
        if reason is None:
            good.append(record)
        else:
            bad.append(Rejected(orjson.dumps(record).decode(), reason))
    return good, bad


def _quarantine(directory: Path, segment: str, start: int, end: int, bad: list[Rejected]) -> None:
    """Keep rejected lines, with their reason, in ``quarantine/`` beside the log: one file per
    read range, so reading the same range again (before the watermark commits) rewrites the
    same file rather than counting twice."""
    if not bad:
        return
    path = directory / QUARANTINE / f"{Path(segment).stem}@{start}-{end}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"".join(
        orjson.dumps({"segment": segment, "line": r.line, "reason": r.reason}) + b"\n" for r in bad
    )
    write_text_atomic(path, body.decode())
    log.warning(
        "%s: %d event line(s) quarantined in %s (first: %s)",
        segment,
        len(bad),
        path,
        bad[0].reason,
    )


def read_quarantine(directory: Path) -> list[dict[str, Any]]:
    """Every quarantined line with its segment and reason."""
    out: list[dict[str, Any]] = []
    folder = directory / QUARANTINE
    for path in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
        out += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return out


def quarantined_count(directory: Path) -> int:
    return len(read_quarantine(directory))


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    for col in ("event_timestamp", "received_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame.drop_duplicates("event_id", keep="first").reset_index(drop=True)


def read_events(directory: Path) -> pd.DataFrame:
    """Every complete, valid event in the log (deduplicated by ``event_id``); invalid lines
    are skipped (:func:`read_new_events` quarantines them)."""
    records: list[dict[str, Any]] = []
    for path in _segments(directory):
        got, bad, _ = _read_from(path, 0)
        records += _split(got, bad)[0]
    return _frame(records)


def read_new_events(directory: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Events after the ingestion watermark, and the watermark to commit once they are stored
    (:func:`commit_watermark`). Committing only after the write makes ingestion at-least-once;
    the consumer deduplicates by ``event_id``. Lines that cannot be ingested (not JSON, a
    time out of range, an unknown type, an id that breaks the id rule of
    :mod:`recommender.data.ids`) are quarantined with their reason, never block."""
    mark = load_watermark(directory)
    records: list[dict[str, Any]] = []
    new_mark = dict(mark)
    for path in _segments(directory):
        start = mark.get(path.name, 0)
        got, bad, offset = _read_from(path, start)
        good, bad = _split(got, bad)
        _quarantine(directory, path.name, start, offset, bad)
        records += good
        new_mark[path.name] = offset
    return _frame(records), new_mark


def load_watermark(directory: Path) -> dict[str, int]:
    path = directory / WATERMARK
    return (
        {str(k): int(v) for k, v in json.loads(path.read_text()).items()} if path.exists() else {}
    )


def commit_watermark(directory: Path, mark: Mapping[str, int]) -> None:
    write_text_atomic(directory / WATERMARK, json.dumps(dict(mark), indent=1, sort_keys=True))
