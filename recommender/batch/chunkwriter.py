"""The nightly job's writer: scored chunks online (the slot's Feast view, through the fast
writer pool or Feast's own write path) and offline (staged parquet parts)."""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np

from recommender.batch.scoring import Chunk
from recommender.config import Settings
from recommender.contract.runs import RunManifest
from recommender.data.lists import lists_table, write_part
from recommender.featurestore.names import list_view
from recommender.featurestore.repo import open_store, write_lists_feast
from recommender.featurestore.writer import ListWriterPool
from recommender.training.artifacts import ModelBundle


class ChunkWriter:
    """Writes scored chunks online (the slot's Feast view) and offline (staged parquet) in a
    background thread, so scoring the next chunk overlaps writing this one."""

    def __init__(self, settings: Settings, bundle: ModelBundle, manifest: RunManifest) -> None:
        self.settings, self.bundle, self.manifest = settings, bundle, manifest
        self.view = list_view(manifest.slot)
        self.timestamp = datetime.fromisoformat(manifest.lists_timestamp)
        self.store = open_store(settings)
        online = self.store.config.online_store
        redis_type = getattr(online, "redis_type", None)
        self.fast = online.type == "redis" and getattr(redis_type, "value", redis_type) == "redis"
        ranking = bundle.ranking
        self.source_names = (
            tuple(ranking.ranker.manifest.retrievers) if ranking is not None else ("als",)
        )
        self.pool = None
        if self.fast:
            self.pool = ListWriterPool(
                settings.nightly.write_workers,
                settings.redis.url,
                settings.redis.password.get_secret_value() if settings.redis.password else None,
                settings.nightly.write_batch,
                project=self.store.project,
                view=self.view,
                item_ids=[str(i) for i in bundle.items.ids],
                model_version=bundle.version,
                run_id=manifest.run_id,
                timestamp=self.timestamp,
                serialization_version=self.store.config.entity_key_serialization_version,
                source_names=self.source_names,
            )
        self.seconds = {"encode_write_online": 0.0, "write_offline": 0.0}

    def write(
        self, chunk: Chunk, rows: np.ndarray, scores: np.ndarray, sources: np.ndarray | None
    ) -> Chunk:
        """Write a scored chunk; ``sources``: each item's mask of the retrievers that proposed
        it (two-stage lists), None for one-model lists."""
        users = self.bundle.users.ids[chunk.start : chunk.stop]
        t0 = time.perf_counter()
        if self.pool is not None:  # online first: its time is the list-write rate alone
            self.pool.write(users, rows, scores, sources)
        t1 = time.perf_counter()
        table = lists_table(
            users,
            rows,
            scores,
            self.bundle.items.ids,
            self.bundle.version,
            self.manifest.run_id,
            self.timestamp,
            sources,
            self.source_names,
        )
        if self.pool is None:
            write_lists_feast(self.store, self.view, table.to_pandas())
            t1 = time.perf_counter()
        write_part(table, self.settings.data_dir, self.manifest.run_id, chunk.index)
        self.seconds["encode_write_online"] += t1 - t0
        self.seconds["write_offline"] += time.perf_counter() - t1
        return chunk

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
