"""The real-time two-stage path: retrieve candidates, rank them with the bundle's LightGBM
ranker on the user's online features and the in-memory item features, then apply the rules
and filters (after ranking, as on every path). Pure; the caller reads Redis. One request's
ranking is a :class:`TwoStageJob`; several are ranked as one block by :func:`two_stage_many`
(the API's batcher), one on the spot by :func:`run_inline`.

Each served item carries the retrievers that proposed it; with ``explain`` also the features
that moved it up most (LightGBM's ``pred_contrib``: per-feature contributions to its score).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec, TypeVar

import numpy as np
import pandas as pd
from scipy.sparse import vstack

from recommender.data.vocab import items_row
from recommender.featurestore.layout import ViewValues
from recommender.featurestore.names import ITEM_METADATA
from recommender.ranking.features import Genres
from recommender.ranking.model import RankingCatalog, UserBlock, item_trending, rank_users
from recommender.ranking.onlinerows import entity_values
from recommender.ranking.retrievers import History, Retriever, recent_from_flat
from recommender.serving.rules import Catalog, Rules, select
from recommender.training.artifacts import ModelBundle

EXPLAIN_FEATURES = 3  # the features that moved an item up most, per item
T = TypeVar("T")
P = ParamSpec("P")


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


@dataclass(frozen=True)
class TwoStageJob:
    """One request's two-stage ranking: everything :func:`two_stage_many` needs for it."""

    bundle: ModelBundle
    items: RankingItems
    user_id: str
    user_views: Mapping[str, ViewValues]
    user_row: int | None
    recent_rows: np.ndarray
    k: int
    rules: Rules
    catalog: Catalog
    now: datetime
    explain: bool = False


# A computation that may ask for two-stage rankings on the way to its answer: it yields a
# job and is sent the job's result (:func:`run_inline` here; the API batches the jobs of
# concurrent requests).
Steps = Generator[TwoStageJob, TwoStageResult, T]


def run_inline(steps: Steps[T]) -> T:
    """Run ``steps``, ranking each job it asks for on the spot."""
    try:
        job = next(steps)
        while True:
            job = steps.send(two_stage_many([job])[0])
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def inline(steps_of: Callable[P, Steps[T]]) -> Callable[P, T]:
    """The plain function of a steps function: the same arguments, each two-stage ranking done
    on the spot (:func:`run_inline`)."""

    @functools.wraps(steps_of)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_inline(steps_of(*args, **kwargs))

    return run


def two_stage_many(jobs: Sequence[TwoStageJob]) -> list[TwoStageResult]:
    """The two-stage ranking of one or more requests in one block (their bundle and item
    features must be the same objects): candidates, features and the ranker's predictions for
    every user at once, then per request the first ``k`` ranked candidates that pass its
    rules, with their provenance (and, with ``explain``, the features that moved them up).
    Each user's candidates and scores are what ranking them alone gives; the block's time
    (the items' age) is its newest request's."""
    if not jobs:
        return []
    bundle, items = jobs[0].bundle, jobs[0].items
    if any(j.bundle is not bundle or j.items is not items for j in jobs):
        raise ValueError("a two-stage block needs one bundle and one set of item features")
    model = bundle.ranking
    if model is None:
        raise ValueError(f"model version {bundle.version} has no ranker")
    history = stack_histories([history_of(bundle, j.user_row, j.recent_rows) for j in jobs])
    positions = [str(u) for u in range(len(jobs))]  # one user twice in a block stays two rows
    catalog = RankingCatalog(
        model,
        bundle.als,
        bundle.popularity.item_scores,
        items.genres,
        items.values,
        items.retrievers,
    )
    users = UserBlock(
        history,
        [j.user_id for j in jobs],
        entity_values(
            {p: j.user_views for p, j in zip(positions, jobs, strict=True)}, positions, user=True
        ),
        pd.Timestamp(max(j.now for j in jobs)),
    )
    # every candidate in ranked order: the rules may drop any of them; provenance is named
    # below for the items that pass the rules
    depth = model.ranker.manifest.depth * len(model.ranker.manifest.retrievers)
    ranked, block = rank_users(catalog, users, depth, with_provenance=False)
    out = []
    for u, job in enumerate(jobs):
        listed = ranked.item_rows[u] >= 0
        item_rows, pairs = ranked.item_rows[u][listed], ranked.pairs[u][listed]
        rows, scores = select(item_rows, ranked.scores[u][listed], job.rules, job.catalog, job.k)
        # each chosen row's candidate pair (a user's ranked rows are distinct)
        order = np.argsort(item_rows, kind="stable")
        at = np.searchsorted(item_rows[order], rows)
        chosen = pairs[order[at]].astype(np.int64) if len(rows) else np.zeros(0, dtype=np.int64)
        provenance = block.cands.provenances(chosen)
        moved_by = None
        if job.explain and len(chosen):
            contrib = model.ranker.contributions(block.x[chosen])[:, :-1]
            names = model.ranker.manifest.feature_names
            moved_by = [
                [names[j] for j in np.argsort(-c, kind="stable")[:EXPLAIN_FEATURES] if c[j] > 0]
                for c in contrib
            ]
        out.append(TwoStageResult(rows, scores, provenance, moved_by))
    return out


def stack_histories(histories: Sequence[History]) -> History:
    """One history block of several requests' one-row blocks, in order."""
    if len(histories) == 1:
        return histories[0]
    return History(
        np.concatenate([h.user_rows for h in histories]),
        vstack([h.matrix for h in histories], format="csr"),
        vstack([h.recent for h in histories], format="csr"),
        refold=np.array([bool(h.refold) for h in histories]),
    )
