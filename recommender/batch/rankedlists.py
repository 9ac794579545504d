"""The ranked nightly's lists: the two-stage model for every chunk, its blocks of users in
helper processes, one per core.

Ranking a block is NumPy, SciPy and LightGBM calls that each hold one core (ALS's top-k
aside), so every chunk is cut into blocks of ``block_users`` and the blocks are ranked in
:func:`recommender.childmap.map_in_children` helpers (``RECO_RANK_WORKERS``, default one per
core; 0: in the job's own process, ALS's top-k on every core). A helper loads the model
version once (from the artifacts directory, checksums verified) and keeps it; each task
carries only what is per block (the users' recent items and feature numbers) and what is per
run and small (item feature numbers, genres, the lists' time). Tasks are made as the helpers
take them, so at most two per helper exist at a time; the job meanwhile encodes and writes
the lists of finished chunks.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import csr_matrix

from recommender.batch.scoring import Chunk
from recommender.childmap import map_in_children
from recommender.data.latest import TIMESTAMP, read_latest
from recommender.data.vocab import Vocab
from recommender.featurestore.names import (
    ITEM_METADATA,
    ITEM_STATS,
    USER_ACTIVITY,
    USER_PROFILE,
    USER_RECENT_ITEMS,
)
from recommender.ranking.features import Genres
from recommender.ranking.model import RankingCatalog, UserBlock, ranked_top_n
from recommender.ranking.onlinerows import ITEM_FEATURES, USER_FEATURES, latest_values
from recommender.ranking.retrievers import History, recent_from_flat
from recommender.training.artifacts import ModelBundle, load_bundle

BLOCK_USERS = 2048  # users per helper task: small enough for every helper to stay busy


# the tables behind the ranker's Feast views (what materialization reads), by entity key
USER_VIEW_TABLES = {USER_ACTIVITY: USER_ACTIVITY, USER_PROFILE: "users"}
ITEM_VIEW_TABLES = {ITEM_STATS: ITEM_STATS, ITEM_METADATA: "items"}


@dataclass(frozen=True)
class RankingInputs:
    """What the two-stage ranker reads besides the bundle, once per run (:func:`read_inputs`):
    the latest snapshot row of every user and item in the tables behind the ranker's views
    (``user_activity``, ``users``, ``item_stats``, ``items``: what materialization puts
    online; only the features it reads), every model user's latest recent items (rows of the
    model's users, :func:`recent_for_users`), the item genres and the lists' time."""

    tables: Mapping[str, pd.DataFrame]
    recent: csr_matrix
    genres: Genres
    as_of: pd.Timestamp


def read_inputs(data_dir: Path, bundle: ModelBundle, as_of: pd.Timestamp) -> RankingInputs:
    """:class:`RankingInputs` from the offline tables in ``data_dir`` (latest rows only,
    :func:`~recommender.data.latest.read_latest`: a million users' tables are never held
    whole)."""
    tables = {}
    for key, views, wanted in (
        ("user_id", USER_VIEW_TABLES, USER_FEATURES),
        ("item_id", ITEM_VIEW_TABLES, ITEM_FEATURES),
    ):
        for view, name in views.items():
            columns = [TIMESTAMP, *(f for v, f in wanted if v == view)]
            if name == "items":
                columns.append("genres")
            latest = read_latest(data_dir, name, key, columns)
            tables[name] = latest.to_pandas()
    recent = read_latest(data_dir, USER_RECENT_ITEMS, "user_id", ["recent_item_ids"])
    return RankingInputs(
        tables,
        recent_for_users(recent, bundle.users, bundle.items),
        item_genres(tables["items"], bundle.items.ids),
        pd.Timestamp(as_of),
    )


def item_genres(items_table: pd.DataFrame, item_ids: Sequence[str] | np.ndarray) -> Genres:
    """Each model item's genre list (None when the items table has no row for it)."""
    by_id = items_table.set_index("item_id")["genres"].reindex(list(item_ids))
    return Genres.from_lists(
        [[str(x) for x in g] if isinstance(g, (list, np.ndarray)) else None for g in by_id]
    )


def recent_for_users(latest: pa.Table, users: Vocab, items: Vocab) -> csr_matrix:
    """Users x items (rows and columns of the model's vocabularies) from each user's latest
    ``user_recent_items`` row (``user_id``, ``recent_item_ids`` newest first), weighted as
    :func:`~recommender.ranking.retrievers.recent_from_lists` weighs them; users without a
    row get an empty row. Arrow to NumPy, no Python object per item."""
    lists = latest["recent_item_ids"].combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    flat = pc.cast(pc.list_flatten(lists), pa.string())
    item_rows = pc.index_in(flat, value_set=pa.array(items.ids.astype(str)))
    user_rows = pc.index_in(
        pc.cast(latest["user_id"], pa.string()), value_set=pa.array(users.ids.astype(str))
    )
    return recent_from_flat(
        lengths,
        pc.fill_null(item_rows, -1).to_numpy(zero_copy_only=False),
        pc.fill_null(user_rows, -1).to_numpy(zero_copy_only=False),
        (len(users), len(items)),
    )


@dataclass(frozen=True)
class RankedTask:
    """One block: users ``start`` to ``stop`` of the model's user vocabulary."""

    artifacts_dir: Path
    version: str
    start: int
    stop: int
    recent: csr_matrix  # the block's recent items (rows of ``RankingInputs.recent``)
    user_values: np.ndarray  # the block's user feature numbers
    item_values: np.ndarray  # every item's feature numbers
    genres: Genres
    as_of: pd.Timestamp
    n: int


_LOADED: dict[tuple[Path, str], ModelBundle] = {}


def _bundle(task: RankedTask) -> ModelBundle:
    key = (task.artifacts_dir, task.version)
    if key not in _LOADED:
        _LOADED.clear()  # one version per helper
        _LOADED[key] = load_bundle(task.artifacts_dir, task.version)
    return _LOADED[key]


def rank_task(
    task: RankedTask, bundle: ModelBundle | None = None, num_threads: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A block's ranked lists (:func:`~recommender.ranking.model.ranked_top_n`: item rows,
    scores, source masks); ``bundle``: the loaded model (default: load ``task.version``
    once per process)."""
    bundle = bundle or _bundle(task)
    if bundle.ranking is None:
        raise ValueError(f"model {bundle.version} has no ranker")
    history = History(
        np.arange(task.start, task.stop), bundle.user_items[task.start : task.stop], task.recent
    )
    catalog = RankingCatalog(
        bundle.ranking,
        bundle.als,
        bundle.popularity.item_scores,
        task.genres,
        task.item_values,
    )
    users = UserBlock(
        history,
        bundle.users.ids[task.start : task.stop].tolist(),
        task.user_values,
        task.as_of,
    )
    return ranked_top_n(catalog, users, task.n, num_threads=num_threads)


def blocks_of(chunk: Chunk, block_users: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the chunk's blocks, in order."""
    return [
        (start, min(start + block_users, chunk.stop))
        for start in range(chunk.start, chunk.stop, block_users)
    ]


def ranked_chunks(
    bundle: ModelBundle,
    artifacts_dir: Path,
    inputs: RankingInputs,
    chunks: Sequence[Chunk],
    n: int,
    workers: int,
    block_users: int = BLOCK_USERS,
) -> Iterator[tuple[Chunk, np.ndarray, np.ndarray, np.ndarray]]:
    """The two-stage model's top-``n`` for each chunk, in
    :func:`~recommender.models.topn.factor_top_n`'s shape (what an engine's ``score`` yields)
    plus each item's source mask (:func:`~recommender.ranking.model.ranked_top_n`), in the
    chunks' order: retrieval from the users' training rows and their latest recent items,
    ranked on the latest feature rows (as the real-time path ranks them). ``bundle`` must be
    the version saved in ``artifacts_dir`` (the helpers load it from there)."""
    if bundle.ranking is None:
        raise ValueError(f"model {bundle.version} has no ranker")
    tables = inputs.tables
    item_ids = bundle.items.ids.tolist()
    item_values = latest_values(tables, "item_id", ITEM_VIEW_TABLES, item_ids)
    # every user's numbers at once (one pass over the tables; 48 bytes a user)
    user_ids = bundle.users.ids.tolist()
    user_values = latest_values(tables, "user_id", USER_VIEW_TABLES, user_ids)

    def tasks() -> Iterator[RankedTask]:
        for chunk in chunks:
            for start, stop in blocks_of(chunk, block_users):
                yield RankedTask(
                    artifacts_dir,
                    bundle.version,
                    start,
                    stop,
                    inputs.recent[start:stop],
                    user_values[start:stop],
                    item_values,
                    inputs.genres,
                    inputs.as_of,
                    n,
                )

    if workers == 0:
        results: Generator[tuple[np.ndarray, np.ndarray, np.ndarray], None, None] = (
            rank_task(task, bundle, num_threads=0) for task in tasks()
        )
    else:
        results = map_in_children(__name__, "rank_task", tasks(), workers)
    try:
        for chunk in chunks:
            parts = [next(results) for _ in blocks_of(chunk, block_users)]
            yield (
                chunk,
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]),
            )
    finally:
        results.close()  # a caller that stops early stops the helpers
