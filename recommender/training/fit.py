"""Fit everything serving needs from one interactions table, without I/O: ALS, popularity,
the profile cold-start model and the FAISS index, as one :class:`ModelBundle`.

The training job feeds it point-in-time profile rows from Feast; the offline replay feeds it
the same attributes from the users table as of its cutoff.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from recommender.data.vocab import Vocab, user_item_matrix
from recommender.models import PopularityModel
from recommender.models.coldstart import PROFILE_FIELDS, ProfileModel
from recommender.models.configs import ALSConfig
from recommender.training.artifacts import ModelBundle
from recommender.training.index import ItemIndex
from recommender.training.manifest import ModelManifest


def fit_bundle(
    interactions: pd.DataFrame,
    titles: pd.Series,
    profiles: pd.DataFrame,
    als_config: ALSConfig,
    version: str,
    manifest: dict[str, Any] | None = None,
) -> ModelBundle:
    """``profiles`` is indexed by user id with :data:`PROFILE_FIELDS` columns (missing users
    get the mean-user vector); ``titles`` maps item id to title."""
    users = Vocab.from_ids(sorted(interactions["user_id"].unique()))
    items = Vocab.from_ids(sorted(interactions["item_id"].unique()))
    matrix = user_item_matrix(interactions, users, items)
    als = als_config.build().fit(matrix)
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
        manifest=ModelManifest.model_validate(manifest or {}),
    )
