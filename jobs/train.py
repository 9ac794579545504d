"""Training job: interactions up to a cutoff -> ALS (+ popularity, profile model) -> FAISS ->
a versioned artifact with its manifest.

Steps: load -> build matrix -> evaluate on a hold-out -> fit on all -> profile model from
point-in-time features (Feast) -> index -> save -> publish.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
from feast import FeatureStore

from recommender.artifacts import ModelBundle, new_version, save_bundle
from recommender.coldstart import PROFILE_FIELDS, ProfileModel
from recommender.config import Settings
from recommender.data.tables import read_table
from recommender.errors import InvalidDataset
from recommender.evaluate import evaluate, split_last_fraction
from recommender.index import ItemIndex
from recommender.matrix import Vocab, user_item_matrix
from recommender.models import ALSModel, PopularityModel
from recommender.store import historical_user_features, open_store

log = logging.getLogger(__name__)


def _als(settings: Settings) -> ALSModel:
    return ALSModel(
        factors=settings.als_factors,
        regularization=settings.als_regularization,
        alpha=settings.als_alpha,
        iterations=settings.als_iterations,
        random_state=settings.seed,
    )


def holdout_metrics(settings: Settings, interactions: pd.DataFrame, k: int = 10) -> dict[str, Any]:
    """NDCG/precision/recall@k of ALS and popularity on a per-user temporal 80/20 hold-out."""
    train, test = split_last_fraction(interactions, 0.2)
    users = Vocab.from_ids(sorted(train["user_id"].unique()))
    items = Vocab.from_ids(sorted(train["item_id"].unique()))
    matrix = user_item_matrix(train, users, items)
    return {
        "protocol": "per-user temporal hold-out, last 20% of each user; full ranking",
        "als": evaluate(_als(settings).fit(matrix), matrix, test, users, items, k),
        "popularity": evaluate(PopularityModel().fit(matrix), matrix, test, users, items, k),
    }


def train(
    settings: Settings,
    cutoff: datetime | None = None,
    store: FeatureStore | None = None,
    publish: bool = True,
) -> ModelBundle:
    """Train a new model version from interactions before ``cutoff`` and save it."""
    t0 = time.perf_counter()
    interactions = read_table(settings.data_dir, "interactions")
    if cutoff is not None:
        interactions = interactions[interactions["event_timestamp"] < cutoff]
    if interactions.empty:
        raise InvalidDataset(f"no interactions before the cutoff {cutoff}")
    items_table = read_table(settings.data_dir, "items")
    as_of = interactions["event_timestamp"].max() + timedelta(seconds=1)

    metrics = holdout_metrics(settings, interactions)
    log.info(
        "hold-out NDCG@10: als=%.4f popularity=%.4f",
        metrics["als"]["ndcg@10"],
        metrics["popularity"]["ndcg@10"],
    )

    users = Vocab.from_ids(sorted(interactions["user_id"].unique()))
    items = Vocab.from_ids(sorted(interactions["item_id"].unique()))
    matrix = user_item_matrix(interactions, users, items)
    als = _als(settings).fit(matrix)
    popularity = PopularityModel().fit(matrix)

    # The profile model learns from user attributes: its rows come point-in-time from Feast.
    store = store or open_store(settings)
    entity_df = pd.DataFrame({"user_id": users.ids, "event_timestamp": as_of})
    feats = historical_user_features(store, entity_df).set_index("user_id").reindex(users.ids)
    profile = ProfileModel.fit(feats[list(PROFILE_FIELDS)], als.user_factors)

    bundle = ModelBundle(
        version=new_version(),
        als=als,
        popularity=popularity,
        profile=profile,
        index=ItemIndex.build(als.item_factors),
        users=users,
        items=items,
        titles=items_table.set_index("item_id")["title"],
        user_items=matrix,
        manifest={
            "created_at": datetime.now(timezone.utc).isoformat(),
            "model": "als",
            "params": als.params(),
            "profile_model": {"kind": "ridge", "l2": 10.0, "tokens": len(profile.tokens)},
            "data": {
                "interactions": len(interactions),
                "users": len(users),
                "items": len(items),
                "first_event": interactions["event_timestamp"].min().isoformat(),
                "last_event": interactions["event_timestamp"].max().isoformat(),
                "cutoff": cutoff.isoformat() if cutoff else None,
                "features_as_of": as_of.isoformat(),
            },
            "metrics": metrics,
            "train_seconds": round(time.perf_counter() - t0, 3),
        },
    )
    path = save_bundle(bundle, settings.artifacts_dir, publish=publish)
    log.info("trained model %s in %.1fs -> %s", bundle.version, time.perf_counter() - t0, path)
    return bundle
