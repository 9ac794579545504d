"""Nightly job: lock -> ingest logged events -> model (retrained candidates pass the promotion
gate first) -> score every known user chunk by chunk into the unpublished list slot (online
through the fast writer, offline as staged parquet) -> materialize features -> publish (one
atomic pointer switch; a promoted model goes live with its lists) -> drift monitor -> manifest.

Safe to kill at any point: nothing a reader sees changes before the switch, and a rerun
resumes the unfinished run's remaining chunks (see :mod:`recommender.batch.runs`).
"""

from __future__ import annotations

import gc
import json
import logging
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from jobs.ingest import ingest_event_log
from jobs.train import train
from recommender import membudget
from recommender.batch.chunkwriter import ChunkWriter
from recommender.batch.engines import make_engine
from recommender.batch.publication import (
    LiveLists,
    RunLock,
    mark_slot,
    next_slot,
    publish,
    read_live,
)
from recommender.batch.rankedlists import RankingInputs, ranked_chunks, read_inputs
from recommender.batch.runs import RunManifest, resumable, write_manifest
from recommender.batch.scoring import Chunk, plan_chunks, scoring_memory_mb
from recommender.config import Settings
from recommender.data.lists import prune_runs, publish_parts
from recommender.data.tables import read_table
from recommender.errors import ArtifactNotFound
from recommender.events.log import quarantined_count
from recommender.featurestore.redisclient import warn_on_eviction
from recommender.featurestore.repo import materialize, open_store, redis_client
from recommender.lifecycle.gate import gate, record_promotion
from recommender.lifecycle.monitor import monitor
from recommender.training import registry
from recommender.training.artifacts import ModelBundle, load_bundle, new_version

log = logging.getLogger(__name__)


def _peak_rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "largest_child": round(children, 1)}


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


def _model(
    settings: Settings,
    manifest: RunManifest,
    retrain: bool,
    pinned: str | None,
    live: LiveLists | None,
) -> ModelBundle:
    if manifest.model_version:  # resuming: the model the run started with
        return load_bundle(settings.artifacts_dir, manifest.model_version)
    if pinned is not None:  # `reco models promote | rollback`
        manifest.model_source = "pinned"
        return load_bundle(settings.artifacts_dir, pinned)
    if not retrain:
        try:
            bundle = load_bundle(settings.artifacts_dir)
            manifest.model_source = "loaded"
            return bundle
        except ArtifactNotFound:
            pass
    candidate = train(settings, publish=False)
    decision, drift = gate(settings, candidate, live)
    manifest.promotion = {
        "candidate": candidate.version,
        **decision.to_dict(),
        "drift": drift,
    }
    log.info(
        "promotion gate for %s: %s (%s)",
        candidate.version,
        "promote" if decision.promote else "keep production",
        "; ".join(decision.reasons),
    )
    if decision.promote:
        manifest.model_source = "trained"
        return candidate
    registry.record(
        settings.artifacts_dir,
        "refuse",
        candidate.version,
        reason="; ".join(decision.reasons),
        run_id=manifest.run_id,
    )
    manifest.model_source = "loaded"
    return load_bundle(settings.artifacts_dir)


def ranking_inputs(settings: Settings, bundle: ModelBundle, as_of: str) -> RankingInputs:
    """The latest snapshot rows the two-stage ranker reads (what materialization puts
    online), read once per run."""
    return read_inputs(settings.data_dir, bundle, pd.Timestamp(as_of))


def _score_and_write(
    settings: Settings,
    bundle: ModelBundle,
    manifest: RunManifest,
    lock: RunLock,
    engine_name: str | None,
) -> dict[str, float]:
    membudget.check(
        scoring_memory_mb(
            settings.batch_size, len(bundle.items), manifest.chunk_users, settings.top_n
        ),
        settings.memory_budget_mb,
        f"scoring {settings.batch_size} users x {len(bundle.items)} items at a time, "
        f"{manifest.chunk_users} users a chunk",
        "RECO_BATCH_SIZE or RECO_CHUNK_USERS",
    )
    chunks = plan_chunks(len(bundle.users), manifest.chunk_users)
    done = set(manifest.chunks_done)
    todo = [c for c in chunks if c.index not in done]
    manifest.chunks_total = len(chunks)
    log.info(
        "nightly %s: %d of %d chunks to score (%d users each)",
        manifest.run_id,
        len(todo),
        len(chunks),
        manifest.chunk_users,
    )
    engine = make_engine(settings, engine_name)
    mark_slot(lock.client, settings.feast_project, manifest.slot, manifest.run_id)
    writer = ChunkWriter(settings, bundle, manifest)
    shorts = manifest.lists_shorter_than_top_n
    score_seconds = 0.0
    pending: deque[Future[Chunk]] = deque()

    def finish(future: Future[Chunk]) -> None:
        chunk = future.result()
        manifest.chunks_done.append(chunk.index)
        manifest.users_written += chunk.size
        write_manifest(settings, manifest)
        progress.update(1)

    progress = tqdm(total=len(chunks), initial=len(done), desc="chunks", disable=None)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="list-writer") as pool:
            t0 = time.perf_counter()
            if bundle.ranking is not None:  # RECO_RANKER: two-stage lists, scored here
                log.info(
                    "nightly %s: model %s has a ranker; two-stage lists in %d helper "
                    "processes (engine %s not used)",
                    manifest.run_id,
                    bundle.version,
                    settings.resolved_rank_workers,
                    manifest.engine,
                )
                inputs = ranking_inputs(settings, bundle, manifest.lists_timestamp)
                scored: Iterator[tuple[Chunk, np.ndarray, np.ndarray, np.ndarray | None]] = (
                    ranked_chunks(
                        bundle,
                        settings.artifacts_dir,
                        inputs,
                        todo,
                        settings.top_n,
                        settings.resolved_rank_workers,
                    )
                )
            else:
                scored = (
                    (chunk, rows, scores, None)
                    for chunk, rows, scores in engine.score(
                        bundle.als.user_factors,
                        bundle.als.item_factors,
                        bundle.user_items,
                        todo,
                        settings.top_n,
                        settings.batch_size,
                    )
                )
            for chunk, rows, scores, sources in scored:
                score_seconds += time.perf_counter() - t0
                lock.check()
                shorts += int((rows[:, -1] < 0).sum())
                pending.append(pool.submit(writer.write, chunk, rows, scores, sources))
                while len(pending) > 1:  # at most one chunk waiting: memory stays bounded
                    finish(pending.popleft())
                t0 = time.perf_counter()
            while pending:
                finish(pending.popleft())
    finally:
        for future in pending:
            future.cancel()
        progress.close()
        engine.close()
        writer.close()
    manifest.lists_shorter_than_top_n = shorts
    return {"score": score_seconds, **writer.seconds}


def _monitor(settings: Settings, lists: LiveLists) -> dict[str, Any]:
    """Drift of the run just published; a failure here never fails a published run."""

    try:
        summary = monitor(settings, lists)
    except Exception as exc:  # noqa: BLE001 - published already; report, do not fail
        log.exception("drift monitor failed")
        return {"error": f"{type(exc).__name__}: {exc}"}
    if summary.get("suspicious"):
        log.warning("run %s looks suspicious: %s", lists.run_id, "; ".join(summary["reasons"]))
    return {k: summary.get(k) for k in ("suspicious", "reasons", "lists")}


def _start_or_resume(
    settings: Settings, live: LiveLists | None, run_id: str, resume: bool
) -> RunManifest:
    previous = resumable(settings, live, settings.top_n, settings.chunk_users) if resume else None
    if previous is not None:
        previous.resumed = previous.resumed + 1
        log.info(
            "nightly: resuming run %s (%d chunks done)",
            previous.run_id,
            len(previous.chunks_done),
        )
        return previous
    now = datetime.now(timezone.utc).isoformat()
    return RunManifest(
        run_id=run_id,
        started_at=now,
        lists_timestamp=now,
        slot=next_slot(live),
        top_n=settings.top_n,
        chunk_users=settings.chunk_users,
    )


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


def run_nightly(
    settings: Settings,
    retrain: bool = False,
    engine: str | None = None,
    resume: bool = True,
    model_version: str | None = None,
    action: str = "promote",
    reason: str = "",
) -> RunManifest:
    """Run every step under the project's run lock; the manifest says what happened, also
    when a step fails or the run is interrupted. ``model_version`` pins the model (promotion
    and rollback); ``action`` and ``reason`` are what the registry journal records."""
    client = redis_client(settings)
    warn_on_eviction(client, "nightly")
    run_id = new_version()
    lock = RunLock(client, settings.feast_project, run_id, settings.lock_seconds)
    try:
        lock.acquire(settings.lock_wait_seconds)
    except BaseException:
        client.close()
        raise
    try:  # under the lock: which slot is live cannot change until we release it
        live = read_live(client, settings.feast_project)
        manifest = _start_or_resume(settings, live, run_id, resume)
    except BaseException:
        lock.release()
        client.close()
        raise
    run_id = manifest.run_id
    manifest.status, manifest.error, manifest.note = "running", None, None
    manifest.engine = engine or settings.engine
    lock.rename(run_id)
    durations = manifest.durations_s

    def step(name: str, t0: float) -> None:
        durations[name] = round(durations.get(name, 0.0) + time.perf_counter() - t0, 3)
        write_manifest(settings, manifest)
        log.info("nightly %s", json.dumps({"run_id": run_id, "phase": name, "s": durations[name]}))

    write_manifest(settings, manifest)
    try:
        with _sigterm_as_exit():
            t0 = time.perf_counter()
            manifest.events_ingested = ingest_event_log(settings)
            manifest.events_quarantined = quarantined_count(settings.event_log_dir)
            step("events", t0)

            t0 = time.perf_counter()
            bundle = _model(settings, manifest, retrain, model_version, live)
            gc.freeze()  # the model's millions of objects never need the cyclic GC again
            manifest.model_version = bundle.version
            manifest.lists = "ranked" if bundle.ranking is not None else "als"
            manifest.users = len(bundle.users)
            step("load", t0)

            t0 = time.perf_counter()
            parts = _score_and_write(settings, bundle, manifest, lock, engine)
            for name, seconds in parts.items():
                durations[name] = round(durations.get(name, 0.0) + seconds, 3)
            step("score_and_write", t0)  # also saves the split above

            t0 = time.perf_counter()
            events = read_table(settings.data_dir, "interactions", ["event_timestamp"])
            earliest = (events["event_timestamp"].min() - timedelta(days=1)).to_pydatetime()
            manifest.materialized = materialize(
                open_store(settings), client, datetime.now(timezone.utc), earliest
            )
            step("materialize", t0)

            t0 = time.perf_counter()
            lock.check()
            publish_parts(settings.data_dir, run_id)
            lists = LiveLists(
                slot=manifest.slot,
                run_id=run_id,
                model_version=bundle.version,
                published_at=datetime.now(timezone.utc).isoformat(),
                users=manifest.users,
            )
            publish(client, settings.feast_project, lock.token, lists)
            if manifest.model_source in ("trained", "pinned"):
                why = reason or "; ".join((manifest.promotion or {}).get("reasons", []))
                record_promotion(settings, bundle.version, action, why, run_id)
            manifest.published_at = lists.published_at
            manifest.pruned_runs = prune_runs(
                settings.data_dir, settings.keep_list_runs, protect={run_id}
            )
            step("publish", t0)
            t0 = time.perf_counter()
            manifest.monitor = _monitor(settings, lists)
            step("monitor", t0)
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
    log.info(
        "nightly %s succeeded: %d users in slot %s, model %s",
        run_id,
        manifest.users,
        manifest.slot,
        manifest.model_version,
    )
    return manifest
