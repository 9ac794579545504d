"""One night's lists: every known user scored chunk by chunk (ALS top-N through the scoring
engine, or the two-stage ranker in helper processes) and written into the run's unpublished
slot by the chunk writer, one chunk waiting at most (memory stays bounded); each finished
chunk is recorded in the run manifest, so a rerun resumes the rest."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
from tqdm import tqdm

from recommender import membudget
from recommender.batch.chunkwriter import ChunkWriter
from recommender.batch.engines import make_engine
from recommender.batch.publication import RunLock, mark_slot
from recommender.batch.rankedlists import RankingInputs, ranked_chunks, read_inputs
from recommender.batch.scoring import Chunk, plan_chunks, scoring_memory_mb
from recommender.config import Settings
from recommender.contract.runs import RunManifest, write_manifest
from recommender.training.artifacts import ModelBundle

log = logging.getLogger(__name__)


def ranking_inputs(settings: Settings, bundle: ModelBundle, as_of: str) -> RankingInputs:
    """The latest snapshot rows the two-stage ranker reads (what materialization puts
    online), read once per run."""
    return read_inputs(settings.data_dir, bundle, pd.Timestamp(as_of))


def score_and_write(
    settings: Settings,
    bundle: ModelBundle,
    manifest: RunManifest,
    lock: RunLock,
    engine_name: str | None,
) -> dict[str, float]:
    """Score and write the chunks ``manifest`` has not finished; seconds per part (scoring,
    and the writer's own)."""
    membudget.check(
        scoring_memory_mb(
            settings.nightly.batch_size,
            len(bundle.items),
            manifest.chunk_users,
            settings.nightly.top_n,
        ),
        settings.nightly.memory_budget_mb,
        f"scoring {settings.nightly.batch_size} users x {len(bundle.items)} items at a time, "
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
    engine = make_engine(settings.nightly, engine_name)
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
                    settings.nightly.resolved_rank_workers,
                    manifest.engine,
                )
                inputs = ranking_inputs(settings, bundle, manifest.lists_timestamp)
                scored: Iterator[tuple[Chunk, np.ndarray, np.ndarray, np.ndarray | None]] = (
                    ranked_chunks(
                        bundle,
                        settings.artifacts_dir,
                        inputs,
                        todo,
                        settings.nightly.top_n,
                        settings.nightly.resolved_rank_workers,
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
                        settings.nightly.top_n,
                        settings.nightly.batch_size,
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
