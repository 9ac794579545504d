"""Fit everything serving needs from one interactions table, without I/O: ALS, popularity,
the profile cold-start model and the FAISS index, as one :class:`ModelBundle`.

The training job feeds it point-in-time profile rows from Feast; the offline replay feeds it
the same attributes from the users table as of its cutoff.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recommender.artifacts import ModelBundle
from recommender.coldstart import PROFILE_FIELDS, ProfileModel
from recommender.index import ItemIndex
from recommender.matrix import Vocab, user_item_matrix
from recommender.models import ALSModel, PopularityModel
from recommender.scoring import top_n as score_top_n


def fit_bundle(
    interactions: pd.DataFrame,
    titles: pd.Series,
    profiles: pd.DataFrame,
    als_params: dict[str, Any],
    version: str,
    manifest: dict[str, Any] | None = None,
) -> ModelBundle:
    """``profiles`` is indexed by user id with :data:`PROFILE_FIELDS` columns (missing users
    get the mean-user vector); ``titles`` maps item id to title."""
    users = Vocab.from_ids(sorted(interactions["user_id"].unique()))
    items = Vocab.from_ids(sorted(interactions["item_id"].unique()))
    matrix = user_item_matrix(interactions, users, items)
    als = ALSModel(**als_params).fit(matrix)
    feats = profiles.reindex(users.ids)
    for name in PROFILE_FIELDS:
        if name not in feats.columns:
            feats[name] = None
    profile = ProfileModel.fit(feats[list(PROFILE_FIELDS)], als.user_factors)
    index = ItemIndex.build(als.item_factors, queries=als.user_factors)
    manifest = {**(manifest or {}), "index": index.info}
    return ModelBundle(
        version=version,
        als=als,
        popularity=PopularityModel().fit(matrix),
        profile=profile,
        index=index,
        users=users,
        items=items,
        titles=titles,
        user_items=matrix,
        manifest=dict(manifest or {}),
    )


def top_n_lists(bundle: ModelBundle, top_n: int, batch_size: int = 1024) -> pd.DataFrame:
    """Every known user's top-N (seen items excluded) as ``user_id, rec_item_ids,
    rec_scores``, scored one batch at a time (the nightly job's lists, as a DataFrame)."""
    rows, scores = score_top_n(
        bundle.als.user_factors, bundle.als.item_factors, bundle.user_items, top_n, batch_size
    )
    item_ids = bundle.items.ids
    return pd.DataFrame(
        {
            "user_id": bundle.users.ids,
            "rec_item_ids": [item_ids[r[r >= 0]].tolist() for r in rows],
            "rec_scores": [s[np.isfinite(s)].tolist() for s in scores],
        }
    )
