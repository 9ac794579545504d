"""What every step of a night shares: the project's run lock (held from start to end), the
live lists as they were when the lock was taken, the run manifest (started or resumed), and
the bookkeeping around each step: its duration, the manifest rewritten after it, and, when a
step fails or the run is interrupted (SIGTERM included), a manifest that says so."""

from __future__ import annotations

import json
import logging
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import ParamSpec, TypeVar

from recommender.batch.publication import RunLock
from recommender.config import Settings
from recommender.contract.published import LiveLists, next_slot, read_live
from recommender.contract.runs import FINISHED, RunManifest, read_manifests, write_manifest
from recommender.featurestore.redisclient import RedisClient, warn_on_eviction
from recommender.featurestore.repo import redis_client
from recommender.training.artifacts import new_version

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class NightRun:
    settings: Settings
    client: RedisClient
    lock: RunLock
    live: LiveLists | None  # the live lists when the lock was taken (cannot change under it)
    manifest: RunManifest

    @property
    def run_id(self) -> str:
        return self.manifest.run_id

    def step(self, name: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one named step, add its time to the manifest's ``durations_s``, save it."""
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        self.add_seconds(name, time.perf_counter() - t0)
        write_manifest(self.settings, self.manifest)
        log.info(
            "nightly %s",
            json.dumps(
                {"run_id": self.run_id, "phase": name, "s": self.manifest.durations_s[name]}
            ),
        )
        return result

    def add_seconds(self, name: str, seconds: float) -> None:
        durations = self.manifest.durations_s
        durations[name] = round(durations.get(name, 0.0) + seconds, 3)


@contextmanager
def night_run(settings: Settings, resume: bool, engine: str | None) -> Iterator[NightRun]:
    """Take the run lock, start (or resume) the run's manifest; at the end, whatever
    happened, record how the run ended and release the lock."""
    client = redis_client(settings)
    warn_on_eviction(client, "nightly")
    lock = RunLock(client, settings.feast_project, new_version(), settings.nightly.lock_seconds)
    try:
        lock.acquire(settings.nightly.lock_wait_seconds)
    except BaseException:
        client.close()
        raise
    try:  # under the lock: which slot is live cannot change until we release it
        live = read_live(client, settings.feast_project)
        manifest = start_or_resume(settings, live, lock.run_id, resume)
    except BaseException:
        lock.release()
        client.close()
        raise
    manifest.status, manifest.error, manifest.note = "running", None, None
    manifest.engine = engine or settings.nightly.engine
    lock.rename(manifest.run_id)
    write_manifest(settings, manifest)
    try:
        with _sigterm_as_exit():
            yield NightRun(settings, client, lock, live, manifest)
        manifest.status = "succeeded"
    except KeyboardInterrupt as exc:
        manifest.status, manifest.error = "interrupted", f"interrupted ({exc or 'Ctrl-C'})"
        _note_partial_slot(manifest)
        raise
    except BaseException as exc:
        manifest.status, manifest.error = "failed", f"{type(exc).__name__}: {exc}"
        _note_partial_slot(manifest)
        raise
    finally:
        manifest.finished_at = datetime.now(timezone.utc).isoformat()
        manifest.peak_rss_mb = _peak_rss_mb()
        write_manifest(settings, manifest)
        lock.release()
        client.close()


def start_or_resume(
    settings: Settings, live: LiveLists | None, run_id: str, resume: bool
) -> RunManifest:
    """The unfinished run to continue (see :func:`resumable`), else a new one writing the
    slot that is not live."""
    previous = (
        resumable(settings, live, settings.nightly.top_n, settings.nightly.chunk_users)
        if resume
        else None
    )
    if previous is not None:
        previous.resumed = previous.resumed + 1
        log.info(
            "nightly: resuming run %s (%d chunks done)", previous.run_id, len(previous.chunks_done)
        )
        return previous
    now = datetime.now(timezone.utc).isoformat()
    return RunManifest(
        run_id=run_id,
        started_at=now,
        lists_timestamp=now,
        slot=next_slot(live),
        top_n=settings.nightly.top_n,
        chunk_users=settings.nightly.chunk_users,
    )


def resumable(
    settings: Settings, live: LiveLists | None, top_n: int, chunk_users: int
) -> RunManifest | None:
    """The latest run if it stopped before publishing and can be continued as it was: the
    same list length and chunking, its model recorded, and its slot still not live."""
    runs = read_manifests(settings)
    if not runs:
        return None
    last = runs[-1]
    reason = None
    if last.status in FINISHED:
        return None
    if live is not None and live.run_id == last.run_id:
        reason = "it had already published"
    elif not last.model_version or not last.slot:
        reason = "it stopped before choosing its model"
    elif live is not None and live.slot == last.slot:
        reason = "its slot has since been published by another run"
    elif (last.top_n, last.chunk_users) != (top_n, chunk_users):
        reason = "top_n or chunk_users changed"
    if reason:
        log.info("not resuming run %s: %s", last.run_id, reason)
        published = live is not None and live.run_id == last.run_id
        last.status = "succeeded" if published else "abandoned"
        last.note = f"not resumed: {reason}"
        write_manifest(settings, last)
        return None
    return last


def _note_partial_slot(manifest: RunManifest) -> None:
    """A run that stopped after writing lists leaves them in its slot: say so (they are
    kept on purpose, so that the next `reco nightly` resumes instead of rewriting them)."""
    if manifest.chunks_done and manifest.published_at is None:
        manifest.note = (
            f"slot {manifest.slot} holds this run's partial lists ({len(manifest.chunks_done)} "
            f"of {manifest.chunks_total} chunks); they are never served (the live pointer "
            "names the other slot) and stay in Redis until `reco nightly` resumes this run "
            "or a new run overwrites them"
        )
        log.warning("nightly %s stopped: %s", manifest.run_id, manifest.note)


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM (cron timeouts, `docker stop`) unwinds like Ctrl-C: the manifest says
    ``interrupted`` and the lock is released at once instead of expiring."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _peak_rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "largest_child": round(children, 1)}
