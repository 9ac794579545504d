"""Batch scoring of every known user in bounded memory (pure; no I/O).

The nightly job cuts the users into *chunks* (the unit of progress, resume and distribution)
and each chunk into *batches* (the unit of memory): a batch's ``batch_size x n_items`` score
matrix is the only dense one that ever exists, so peak memory is the model plus one batch,
whatever the number of users. Top-N selection with seen items excluded is implicit's
``topk`` (a blocked matrix product plus a per-row heap, in C++ threads:
:func:`recommender.models.topn.factor_top_n`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.featurestore.names import (
    ITEM_METADATA,
    ITEM_STATS,
    USER_ACTIVITY,
    USER_PROFILE,
    USER_RECENT_ITEMS,
)
from recommender.models.topn import factor_top_n
from recommender.ranking.features import Genres
from recommender.ranking.model import ranked_top_n
from recommender.ranking.onlinerows import latest_values
from recommender.ranking.retrievers import History, recent_from_lists
from recommender.training.artifacts import ModelBundle


@dataclass(frozen=True)
class Chunk:
    """Users ``start`` (inclusive) to ``stop`` (exclusive) of the model's user vocabulary."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_chunks(n_users: int, chunk_users: int) -> list[Chunk]:
    """Consecutive chunks of at most ``chunk_users`` users covering ``0..n_users``.

    Example: ``plan_chunks(5, 2)`` -> chunks 0:[0, 2), 1:[2, 4), 2:[4, 5).
    """
    if chunk_users < 1:
        raise ValueError("chunk_users must be at least 1")
    return [
        Chunk(i, start, min(start + chunk_users, n_users))
        for i, start in enumerate(range(0, n_users, chunk_users))
    ]


def scoring_memory_mb(batch_size: int, n_items: int, chunk_users: int, n: int) -> float:
    """What scoring plans to hold besides the model: one batch's dense ``batch_size x n_items``
    scores (x3: implicit's scores, the mask and the partition) and two chunks' lists in flight
    (rows and scores, 8 bytes an entry, x3 for their encoded copies).

    Example: ``scoring_memory_mb(1024, 50_000, 50_000, 100)`` is about 800 MB."""
    batch = batch_size * n_items * 4 * 3
    chunks = 2 * chunk_users * n * 8 * 3
    return (batch + chunks) / 2**20


def top_n_lists(bundle: ModelBundle, n: int, batch_size: int = 1024) -> pd.DataFrame:
    """Every known user's top-N (seen items excluded) as ``user_id, rec_item_ids,
    rec_scores``, scored one batch at a time (the nightly job's lists, as a DataFrame)."""
    rows, scores = factor_top_n(
        bundle.als.user_factors, bundle.als.item_factors, bundle.user_items, n, batch_size
    )
    item_ids = bundle.items.ids
    return pd.DataFrame(
        {
            "user_id": bundle.users.ids,
            "rec_item_ids": [item_ids[r[r >= 0]].tolist() for r in rows],
            "rec_scores": [s[np.isfinite(s)].tolist() for s in scores],
        }
    )


@dataclass(frozen=True)
class RankingInputs:
    """What the two-stage ranker reads besides the bundle, once per run: the latest snapshot
    tables (``users``, ``items``, ``user_activity``, ``item_stats``, ``user_recent_items``:
    what materialization puts online), the item genres and the lists' time."""

    tables: Mapping[str, pd.DataFrame]
    genres: Genres
    as_of: pd.Timestamp


def item_genres(items_table: pd.DataFrame, item_ids: Sequence[str] | np.ndarray) -> Genres:
    """Each model item's genre list (None when the items table has no row for it)."""
    by_id = items_table.set_index("item_id")["genres"].reindex(list(item_ids))
    return Genres.from_lists(
        [[str(x) for x in g] if isinstance(g, (list, np.ndarray)) else None for g in by_id]
    )


def _latest_recent_lists(table: pd.DataFrame) -> dict[str, list[str]]:
    last = table.sort_values("event_timestamp", kind="stable").groupby("user_id").tail(1)
    return {
        str(u): list(ids) for u, ids in zip(last["user_id"], last["recent_item_ids"], strict=True)
    }


def ranked_chunks(
    bundle: ModelBundle, inputs: RankingInputs, chunks: Sequence[Chunk], n: int
) -> Iterator[tuple[Chunk, np.ndarray, np.ndarray, np.ndarray]]:
    """The two-stage model's top-``n`` for each chunk, in
    :func:`~recommender.models.topn.factor_top_n`'s shape (what an engine's ``score`` yields)
    plus each item's source mask (:func:`ranked_top_n`): retrieval from the users' training
    rows and their latest recent items, ranked on the latest feature rows (as the real-time
    path ranks them)."""
    model = bundle.ranking
    if model is None:
        raise ValueError(f"model {bundle.version} has no ranker")
    tables = inputs.tables
    item_ids = bundle.items.ids.tolist()
    item_views = {ITEM_STATS: ITEM_STATS, ITEM_METADATA: "items"}
    item_values = latest_values(tables, "item_id", item_views, item_ids)
    user_views = {USER_ACTIVITY: USER_ACTIVITY, USER_PROFILE: "users"}
    # every user's numbers at once (one pass over the tables; 48 bytes a user)
    user_values = latest_values(tables, "user_id", user_views, bundle.users.ids.tolist())
    recent = _latest_recent_lists(tables[USER_RECENT_ITEMS])
    for chunk in chunks:
        ids = bundle.users.ids[chunk.start : chunk.stop].tolist()
        history = History(
            np.arange(chunk.start, chunk.stop),
            bundle.user_items[chunk.start : chunk.stop],
            recent_from_lists([recent.get(u, []) for u in ids], bundle.items),
        )
        rows, scores, sources = ranked_top_n(
            model,
            bundle.als,
            bundle.popularity.item_scores,
            inputs.genres,
            history,
            ids,
            user_values[chunk.start : chunk.stop],
            item_values,
            inputs.as_of,
            n,
        )
        yield chunk, rows, scores, sources
