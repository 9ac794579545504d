"""Synthetic tables of any size, written block by block with the blocks built in parallel.

Each block of users is generated and turned into its share of the tables
(:func:`~recommender.data.tables.block_tables`) in a helper process; this process only appends
the blocks to the parquet files in order and adds up the per-item counts. The result does not
depend on the number of processes: every block has its own seeded generator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.childmap import map_in_children
from recommender.data.synthetic import Catalog, synthetic_items, synthetic_user_block
from recommender.data.tables import BlockTables, block_tables, item_vocabulary, write_blocks


@dataclass(frozen=True)
class SyntheticSpec:
    """The size and shape of a synthetic catalog (see :mod:`recommender.data.synthetic`)."""

    n_users: int
    n_items: int
    n_interactions: int
    n_genres: int = 20
    days: int = 60
    seed: int = 0
    chunk_users: int = 50_000
    recent_n: int = 20

    @property
    def blocks(self) -> int:
        return -(-self.n_users // self.chunk_users)


@functools.lru_cache(maxsize=2)
def _catalog(n_items: int, n_genres: int, seed: int) -> tuple[Catalog, np.ndarray]:
    catalog = synthetic_items(n_items, n_genres=n_genres, seed=seed)
    return catalog, item_vocabulary(catalog.items)


def synthetic_block_tables(task: tuple[SyntheticSpec, int]) -> BlockTables:
    """Block ``task[1]`` of the catalog ``task[0]``, as tables (run in a helper process)."""
    spec, block = task
    catalog, item_ids = _catalog(spec.n_items, spec.n_genres, spec.seed)
    inter, users = synthetic_user_block(
        catalog,
        spec.n_users,
        spec.n_interactions,
        spec.days,
        spec.seed,
        spec.chunk_users,
        block,
    )
    return block_tables(inter, users, item_ids, spec.recent_n)


def write_synthetic(spec: SyntheticSpec, data_dir: Path, workers: int) -> dict[str, int]:
    """Write the catalog's tables to ``data_dir`` with up to ``workers`` helper processes
    (``0``: all in this one); returns row counts."""
    catalog, _ = _catalog(spec.n_items, spec.n_genres, spec.seed)
    tasks = ((spec, block) for block in range(spec.blocks))
    workers = min(workers, spec.blocks) if spec.blocks > 1 else 0
    blocks = map_in_children(__name__, "synthetic_block_tables", tasks, workers)
    return write_blocks(catalog.items, blocks, data_dir)
