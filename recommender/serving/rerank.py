"""The real-time two-stage path for one request: retrieve candidates, rank them with the
bundle's LightGBM ranker on the user's online features and the in-memory item features, then
apply the rules and filters (after ranking, as on every path). Pure; the caller reads Redis.

Each served item carries the retrievers that proposed it; with ``explain`` also the features
that moved it up most (LightGBM's ``pred_contrib``: per-feature contributions to its score).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from recommender.data.vocab import items_row
from recommender.featurestore.layout import ViewValues
from recommender.featurestore.names import ITEM_METADATA
from recommender.ranking.features import Genres
from recommender.ranking.model import item_trending, rank_users
from recommender.ranking.onlinerows import entity_values
from recommender.ranking.retrievers import History, Retriever, recent_from_flat
from recommender.serving.rules import Catalog, Rules, select
from recommender.training.artifacts import ModelBundle

EXPLAIN_FEATURES = 3  # the features that moved an item up most, per item


@dataclass(frozen=True)
class RankingItems:
    """Item features held in memory for the ranker, refreshed with the catalog."""

    values: np.ndarray  # the ranker's item numbers, one row per bundle item (ITEM_COLUMNS)
    genres: Genres  # rows as the bundle's items
    # the bundle ranker's retrievers on the calling thread, trending from ``values``: built
    # with the catalog (popularity and trending sort every item), not per request
    retrievers: list[Retriever] | None = None

    @classmethod
    def from_views(
        cls, views: Mapping[str, Mapping[str, ViewValues]], bundle: ModelBundle
    ) -> RankingItems:
        """From each item's decoded online views (``item_stats``, ``item_metadata``)."""
        values = entity_values(views, bundle.items.ids, user=False)
        genres = [
            list((views.get(i) or {}).get(ITEM_METADATA, {}).get("genres") or [])
            for i in bundle.items.ids.tolist()
        ]
        retrievers = (
            bundle.ranking.retrievers(
                bundle.als,
                bundle.popularity.item_scores,
                item_trending(values),
                num_threads=1,
                index=bundle.index,  # ALS's candidates by graph search, not a full pass
            )
            if bundle.ranking is not None
            else None
        )
        return cls(values, Genres.from_lists(genres), retrievers)


@dataclass
class TwoStageResult:
    rows: np.ndarray
    scores: np.ndarray
    provenance: list[list[str]]
    moved_by: list[list[str]] | None


def history_of(bundle: ModelBundle, user_row: int | None, recent_rows: np.ndarray) -> History:
    """One request's history block: the user's training items (a known user) and the request's
    and pushed items, newest first, as the recent matrix."""
    n_items = len(bundle.items)
    if user_row is None:
        seen = np.zeros(0, dtype=np.int64)
    else:
        ui = bundle.user_items
        seen = ui.indices[ui.indptr[user_row] : ui.indptr[user_row + 1]]
    every = np.union1d(seen, recent_rows[recent_rows >= 0]).astype(np.int64)
    matrix = items_row(every, n_items)
    # the request's and pushed items, newest first, weighted as the nightly weighs them
    newest = np.asarray(recent_rows, dtype=np.int64)
    recent = recent_from_flat(np.array([len(newest)]), newest, np.zeros(1, np.int64), (1, n_items))
    row = -1 if user_row is None else user_row
    # a known user with new items is folded in again, as the one-stage real-time path does
    return History(np.array([row]), matrix, recent, refold=bool(len(recent_rows)))


def two_stage(
    bundle: ModelBundle,
    items: RankingItems,
    user_id: str,
    user_views: Mapping[str, ViewValues],
    user_row: int | None,
    recent_rows: np.ndarray,
    k: int,
    rules: Rules,
    catalog: Catalog,
    now: datetime,
    explain: bool = False,
) -> TwoStageResult:
    """Ranked, then filtered: the first ``k`` ranked candidates that pass the rules."""
    model = bundle.ranking
    if model is None:
        raise ValueError(f"model version {bundle.version} has no ranker")
    history = history_of(bundle, user_row, recent_rows)
    ranked, block = rank_users(
        model,
        bundle.als,
        bundle.popularity.item_scores,
        items.genres,
        history,
        [user_id],
        entity_values({user_id: user_views}, [user_id], user=True),
        items.values,
        pd.Timestamp(now),
        # every candidate in ranked order: the rules may drop any of them
        model.ranker.manifest.depth * len(model.ranker.manifest.retrievers),
        with_provenance=False,  # named below for the items that pass the rules
        retrievers=items.retrievers,
    )
    listed = ranked.item_rows[0] >= 0
    item_rows, pairs = ranked.item_rows[0][listed], ranked.pairs[0][listed]
    rows, scores = select(item_rows, ranked.scores[0][listed], rules, catalog, k)
    # each chosen row's candidate pair (the ranked rows are distinct)
    order = np.argsort(item_rows, kind="stable")
    at = np.searchsorted(item_rows[order], rows)
    chosen = pairs[order[at]].astype(np.int64) if len(rows) else np.zeros(0, dtype=np.int64)
    provenance = block.cands.provenances(chosen)
    moved_by = None
    if explain and len(chosen):
        contrib = model.ranker.contributions(block.x[chosen])[:, :-1]
        names = model.ranker.manifest.feature_names
        moved_by = [
            [names[j] for j in np.argsort(-c, kind="stable")[:EXPLAIN_FEATURES] if c[j] > 0]
            for c in contrib
        ]
    return TwoStageResult(rows, scores, provenance, moved_by)
