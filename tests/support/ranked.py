"""A bundle with a trained two-stage ranker, for the real-time ranking tests."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from recommender.data.tables import build_tables
from recommender.featurestore.names import ITEM_METADATA, ITEM_STATS
from recommender.models.configs import als_config
from recommender.ranking.dataset import TableReader
from recommender.ranking.features import Genres
from recommender.ranking.model import fit_two_stage
from recommender.ranking.twostage import RankingConfig
from recommender.serving.rerank import RankingItems, TwoStageJob
from recommender.serving.rules import Catalog, Rules
from recommender.training.artifacts import ModelBundle
from recommender.training.fit import fit_bundle
from tests.support.bundles import ALS
from tests.support.synthetic import synthetic_tables

START = pd.Timestamp("2024-01-01", tz="UTC")
NOW = datetime(2024, 3, 15, tzinfo=timezone.utc)  # the requests' time


def ranked_bundle() -> tuple[ModelBundle, RankingItems, Catalog]:
    """A bundle with a two-stage ranker on the two-taste-group data, its items' features as
    the API holds them, and the catalog."""
    tables = build_tables(*synthetic_tables(np.random.default_rng(11), per_user=14))
    inter = tables["interactions"]
    bundle = fit_bundle(
        inter,
        tables["items"].set_index("item_id")["title"],
        tables["users"].set_index("user_id"),
        als_config(ALS),
        version="rerank",
    )
    genres = Genres.from_lists(
        tables["items"].set_index("item_id")["genres"].reindex(bundle.items.ids).tolist()
    )
    config = RankingConfig(depth=20, als=ALS, rounds=40, lgb_params={"min_data_in_leaf": 5})
    cutoffs = [START + pd.Timedelta(days=d) for d in (30, 40)]
    bundle.ranking = fit_two_stage(
        inter,
        bundle.items,
        TableReader(tables),
        genres,
        cutoffs,
        20,
        config,
    )
    # the decoded online views of every item, as the API holds them (latest values)
    stats = tables[ITEM_STATS].sort_values("event_timestamp").groupby("item_id").last()
    meta = tables["items"].set_index("item_id")
    views = {
        i: {
            ITEM_STATS: stats.loc[i].to_dict() if i in stats.index else {},
            ITEM_METADATA: {"year": meta.loc[i, "year"], "genres": list(meta.loc[i, "genres"])},
        }
        for i in bundle.items.ids.tolist()
    }
    return (
        bundle,
        RankingItems.from_views(views, bundle),
        Catalog.from_frame(tables["items"], bundle.items),
    )


def jobs_of(served: tuple[ModelBundle, RankingItems, Catalog]) -> list[TwoStageJob]:
    """Requests of every kind: new users with different items, rules and k, one explained,
    the same user twice, a known user with new items (fold in again) and one without (the
    trained vector)."""
    bundle, items, catalog = served
    rows = bundle.items.rows
    no_comedy = Rules(exclude={"genres": frozenset({"Comedy"})})
    known = int(bundle.users.rows(["a_user3"])[0])
    assert known >= 0
    asks = [
        ("new1", None, ["a1", "a2", "a3"], 5, Rules(), False),
        ("new2", None, ["b1", "b4"], 3, no_comedy, True),
        ("new1", None, ["a1", "a2", "a3"], 5, Rules(), False),
        ("a_user3", known, ["b2"], 4, Rules(), False),
        ("a_user3", known, [], 6, no_comedy, True),
    ]
    return [
        TwoStageJob(bundle, items, user, {}, row, rows(recent), k, rules, catalog, NOW, explain)
        for user, row, recent, k, rules, explain in asks
    ]
