"""Where the nightly scoring runs: in this process (``local``) or on Ray (``ray``).

Both yield ``(chunk, item_rows, scores)`` for the chunks they are given, in any order, from
the same pure function (:func:`recommender.models.topn.factor_top_n`), so their lists are
identical. Ray is used as it is meant to be: the item factors go into its object store
once, every chunk is a task, and Ray schedules them on whatever cluster ``RECO_RAY_ADDRESS``
names (a local instance by default). Writing stays in the driver, so the online store sees
one writer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from scipy.sparse import csr_matrix

from recommender.batch.scoring import Chunk
from recommender.config import NightlySettings
from recommender.errors import InvalidRequest
from recommender.models.topn import factor_top_n

log = logging.getLogger(__name__)
Scored = tuple[Chunk, np.ndarray, np.ndarray]


class Engine(Protocol):
    name: str

    def score(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        seen: csr_matrix,
        chunks: Sequence[Chunk],
        n: int,
        batch_size: int,
    ) -> Iterator[Scored]: ...

    def close(self) -> None: ...


class LocalEngine:
    """Chunks one after another, each using every core (implicit's C++ threads)."""

    name = "local"

    def score(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        seen: csr_matrix,
        chunks: Sequence[Chunk],
        n: int,
        batch_size: int,
    ) -> Iterator[Scored]:
        for chunk in chunks:
            sl = slice(chunk.start, chunk.stop)
            ids, scores = factor_top_n(user_factors[sl], item_factors, seen[sl], n, batch_size)
            yield chunk, ids, scores

    def close(self) -> None:
        pass


def _score_task(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    seen: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]],
    n: int,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    data, indices, indptr, shape = seen
    matrix = csr_matrix((data, indices, indptr), shape=shape)
    return factor_top_n(user_factors, item_factors, matrix, n, batch_size, num_threads=1)


class RayEngine:
    """One Ray task per chunk, at most two per CPU in flight; results as they finish."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        import ray

        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus
            ray.init(**kwargs)
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.task = ray.remote(num_cpus=1)(_score_task)
        log.info("ray engine: %d CPUs (%s)", self.cpus, address or "local instance")

    def score(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        seen: csr_matrix,
        chunks: Sequence[Chunk],
        n: int,
        batch_size: int,
    ) -> Iterator[Scored]:
        ray = self.ray
        items_ref = ray.put(np.ascontiguousarray(item_factors, dtype=np.float32))
        pending: dict[Any, Chunk] = {}
        todo = list(chunks)
        while todo or pending:
            while todo and len(pending) < 2 * self.cpus:
                chunk = todo.pop(0)
                sl = slice(chunk.start, chunk.stop)
                part = seen[sl]
                ref = self.task.remote(
                    np.ascontiguousarray(user_factors[sl]),
                    items_ref,
                    (part.data, part.indices, part.indptr, part.shape),
                    n,
                    batch_size,
                )
                pending[ref] = chunk
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                ids, scores = ray.get(ref)
                yield pending.pop(ref), ids, scores

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_engine(nightly: NightlySettings, name: str | None = None) -> Engine:
    name = name or nightly.engine
    if name == "local":
        return LocalEngine()
    if name == "ray":
        try:
            return RayEngine(nightly.ray_address, nightly.ray_num_cpus)
        except ImportError as exc:
            raise InvalidRequest(
                "the ray engine needs Ray: pip install 'reco-platform[ray]'"
            ) from exc
    raise ValueError(f"engine must be local or ray, not {name!r}")
