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
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from recommender.fileio import write_text_atomic

log = logging.getLogger(__name__)
WATERMARK = "ingested.json"
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
    return records


def _read_from(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete lines after ``offset``; returns the records and the new offset."""
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1  # a torn last line is not complete yet (or never will be)
    records = []
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            log.warning("%s: skipping a malformed event line", path.name)
    return records, offset + end


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    for col in ("event_timestamp", "received_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame.drop_duplicates("event_id", keep="first").reset_index(drop=True)


def read_events(directory: Path) -> pd.DataFrame:
    """Every complete event in the log (deduplicated by ``event_id``)."""
    records: list[dict[str, Any]] = []
    for path in _segments(directory):
        records += _read_from(path, 0)[0]
    return _frame(records)


def read_new_events(directory: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Events after the ingestion watermark, and the watermark to commit once they are stored
    (:func:`commit_watermark`). Committing only after the write makes ingestion at-least-once;
    the consumer deduplicates by ``event_id``."""
    mark = load_watermark(directory)
    records: list[dict[str, Any]] = []
    new_mark = dict(mark)
    for path in _segments(directory):
        got, offset = _read_from(path, mark.get(path.name, 0))
        records += got
        new_mark[path.name] = offset
    return _frame(records), new_mark


def load_watermark(directory: Path) -> dict[str, int]:
    path = directory / WATERMARK
    return (
        {str(k): int(v) for k, v in json.loads(path.read_text()).items()} if path.exists() else {}
    )


def commit_watermark(directory: Path, mark: Mapping[str, int]) -> None:
    write_text_atomic(directory / WATERMARK, json.dumps(dict(mark), indent=1, sort_keys=True))
