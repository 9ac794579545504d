"""Model versions that failed to load, and when to try each again.

A corrupt or half-copied version is retried, not forgotten (an operator may repair it), but
loading it means reading and hashing every file: at a million users that is seconds of CPU
and gigabytes of reads per attempt, in every worker. So each failure backs off (the retry
delay doubles with every failed attempt, up to :data:`MAX_BACKOFF` times
``RECO_MODEL_RETRY_SECONDS``), and a version whose files changed since its last failure (a
repair, a re-copy) is tried again at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_BACKOFF = 32  # the longest wait between attempts, in retry periods

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(directory: Path) -> Fingerprint:
    """Name, size and modification time of every file under ``directory`` (one level of
    sub-directories, as a version has), without reading them; empty when it is missing."""
    out = []
    stack = [directory]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir():
                    stack.append(Path(entry.path))
                else:
                    st = entry.stat()
                    out.append((os.path.relpath(entry.path, directory), st.st_size, st.st_mtime_ns))
            except OSError:
                continue
    return tuple(sorted(out))


@dataclass
class Failure:
    at: float  # when the last attempt failed
    attempts: int
    error: str
    files: Fingerprint


@dataclass
class LoadFailures:
    """Per version: the last failure, and whether it is time to try again."""

    _by_version: dict[str, Failure] = field(default_factory=dict)

    def due(self, version: str, files: Fingerprint, now: float, retry_seconds: float) -> bool:
        """Whether to try loading ``version`` now: never failed, its files changed since, or
        its back-off (``retry_seconds * 2**(attempts - 1)``, capped) has passed."""
        failure = self._by_version.get(version)
        if failure is None or failure.files != files:
            return True
        wait = retry_seconds * min(2 ** (failure.attempts - 1), MAX_BACKOFF)
        return now - failure.at >= wait

    def failed(self, version: str, files: Fingerprint, error: str, now: float) -> None:
        previous = self._by_version.get(version)
        attempts = previous.attempts + 1 if previous and previous.files == files else 1
        self._by_version[version] = Failure(now, attempts, error, files)

    def loaded(self, version: str) -> None:
        self._by_version.pop(version, None)

    def error(self, version: str) -> str | None:
        failure = self._by_version.get(version)
        return failure.error if failure else None
