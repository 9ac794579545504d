"""Replay a bundle with the two-stage ranker, path by path, as of a cut-off T (pure; no I/O).

The same as :func:`recommender.evaluation.replay.replay_served` for the bundle `reco train`
builds with ``RECO_RANKER``: ALS, popularity and the profile model fitted before T, the
ranker trained at cut-offs before T (retrievers refitted at each, features as of each), and
the point-in-time feature tables of what came before T (what materialization would have put
online at T). Known users get the list the ranked nightly would have stored
(:func:`~recommender.ranking.model.ranked_top_n`, its own function, with the latest feature
rows and recent items); new users get the API's real-time path with the two-stage ranking
input it builds (their profile as the online store holds it), and the one-stage fold-in is
replayed beside it, so the evidence can route them to whichever serves them best.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from recommender.batch.rankedlists import ITEM_VIEW_TABLES, USER_VIEW_TABLES, item_genres
from recommender.batch.scoring import lists_frame
from recommender.data.tables import build_tables
from recommender.evaluation.pathevidence import Served
from recommender.evaluation.replay import judged_users, known_users, new_users
from recommender.featurestore.names import USER_PROFILE
from recommender.models.configs import als_config
from recommender.ranking.dataset import TableReader
from recommender.ranking.features import Genres
from recommender.ranking.model import (
    RankingCatalog,
    UserBlock,
    default_cutoffs,
    fit_two_stage,
    history_block,
    item_trending,
    ranked_top_n,
)
from recommender.ranking.onlinerows import USER_FEATURES, latest_values
from recommender.ranking.retrievers import recent_matrix
from recommender.ranking.twostage import RankingConfig
from recommender.serving.paths import RankingInput
from recommender.serving.rerank import RankingItems
from recommender.training.artifacts import ModelBundle
from recommender.training.fit import fit_bundle


def fit_ranked(
    before: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    genres: Genres,
    params: Mapping[str, Any],
    config: RankingConfig,
    label_days: float,
    n_cutoffs: int,
    ranker_users: pd.DataFrame | None = None,
) -> ModelBundle:
    """The bundle `reco train` would build from ``before`` with the ranker on: the ranker's
    rows from ``ranker_users`` (its seeded sample; default every user) at ``n_cutoffs``
    cut-offs ``label_days`` apart, features from ``tables`` by the as-of join Feast does."""
    profiles = tables["users"].set_index("user_id")
    titles = tables["items"].set_index("item_id")["title"]
    bundle = fit_bundle(before, titles, profiles, als_config(dict(params)), version="replay")
    rows = before if ranker_users is None else ranker_users
    cutoffs = default_cutoffs(before, n=n_cutoffs, label_days=label_days)
    bundle.ranking = fit_two_stage(
        rows, bundle.items, TableReader(tables), genres, cutoffs, label_days, config
    )
    return bundle


def ranked_lists(
    bundle: ModelBundle,
    before: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    genres: Genres,
    user_ids: Sequence[str],
    as_of: pd.Timestamp,
    top_n: int,
) -> pd.DataFrame:
    """The ranked nightly's lists for ``user_ids`` (model users) as of ``as_of``: their
    training rows and recent items, the latest feature rows of ``tables``; indexed by
    ``user_id`` with ``rec_item_ids`` and ``rec_scores``."""
    assert bundle.ranking is not None
    ids = [str(u) for u in user_ids]
    rows = bundle.users.rows(ids)
    item_values = latest_values(tables, "item_id", ITEM_VIEW_TABLES, bundle.items.ids.tolist())
    catalog = RankingCatalog(
        bundle.ranking, bundle.als, bundle.popularity.item_scores, genres, item_values
    )
    recent = recent_matrix(before, ids, bundle.items, bundle.ranking.config.recent_n)
    users = UserBlock(
        history_block(bundle.user_items, rows, recent),
        ids,
        latest_values(tables, "user_id", USER_VIEW_TABLES, ids),
        as_of,
    )
    item_rows, scores, _ = ranked_top_n(catalog, users, top_n)
    return lists_frame(bundle, np.asarray(ids), item_rows, scores).set_index("user_id")


def ranking_inputs(
    bundle: ModelBundle, tables: Mapping[str, pd.DataFrame], genres: Genres, now: datetime
) -> Callable[[str, Mapping[str, Any]], RankingInput]:
    """What the API hands a new user's real-time path with a ranker: the items' features as
    it holds them (latest rows), the user's profile view, the request's time."""
    assert bundle.ranking is not None
    values = latest_values(tables, "item_id", ITEM_VIEW_TABLES, bundle.items.ids.tolist())
    retrievers = bundle.ranking.retrievers(
        bundle.als,
        bundle.popularity.item_scores,
        item_trending(values),
        num_threads=1,
        index=bundle.index,
    )
    items = RankingItems(values, genres, retrievers)
    wanted = [feature for view, feature in USER_FEATURES if view == USER_PROFILE]

    def for_user(user_id: str, profile: Mapping[str, Any]) -> RankingInput:
        views = {USER_PROFILE: {f: profile.get(f) for f in wanted}}
        return RankingInput(items, user_id, views, now)

    return for_user


def replay_ranked(
    interactions: pd.DataFrame,
    users_table: pd.DataFrame,
    items_table: pd.DataFrame,
    cutoff: datetime,
    params: Mapping[str, Any],
    config: RankingConfig,
    label_days: float,
    n_cutoffs: int,
    k: int = 10,
    ns: Sequence[int] = (1, 3, 5),
    top_n: int = 100,
    popularity_blend: float = 0.0,
    ranker_users: int | None = None,
    seed: int = 0,
) -> tuple[ModelBundle, pd.DataFrame, list[Served]]:
    """Fit the ranked bundle on everything before ``cutoff`` and replay every path (and its
    popularity fallback; a new user's one-stage fold-in too) on what followed: the bundle,
    the interactions after the cut-off (in its catalog) and the served lists.
    ``popularity_blend``: the one-stage fold-in's blend; ``ranker_users``: the ranker's rows
    come from a seeded sample of that many users (as `reco train`'s)."""
    ts = interactions["event_timestamp"]
    before, after = interactions[ts < cutoff], interactions[ts >= cutoff]
    if before.empty or after.empty:
        raise ValueError(f"the cutoff {cutoff} leaves no interactions on one side")
    tables = build_tables(before, users_table, items_table)
    before = tables["interactions"]
    genres = item_genres(tables["items"], sorted(before["item_id"].unique()))  # the model's order
    sample = None
    if ranker_users is not None and before["user_id"].nunique() > ranker_users:
        keep = np.random.default_rng(seed).choice(
            before["user_id"].unique(), ranker_users, replace=False
        )
        sample = before[before["user_id"].isin(keep)]
    bundle = fit_ranked(before, tables, genres, params, config, label_days, n_cutoffs, sample)
    bundle.manifest = bundle.manifest.model_copy(update={"popularity_blend": popularity_blend})
    after = judged_users(after[after["item_id"].isin(bundle.items.ids)], bundle.users.ids)
    returning = sorted(set(after["user_id"].astype(str)) & set(bundle.users.ids.tolist()))
    stored = ranked_lists(bundle, before, tables, genres, returning, pd.Timestamp(cutoff), top_n)
    served = known_users(bundle, after, k, top_n, stored=stored)
    profiles = users_table.set_index("user_id")
    ranking = ranking_inputs(bundle, tables, genres, cutoff)
    served += new_users(bundle, after, profiles, k, ns, ranking=ranking)
    return bundle, after, served
