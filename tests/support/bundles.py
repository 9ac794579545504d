"""A model bundle fitted on two taste groups that never mix (items ``a*`` and ``b*``), so the
right answer of every serving path is known."""

from __future__ import annotations

import numpy as np

from recommender.data.tables import build_tables
from recommender.models.configs import als_config
from recommender.training.artifacts import ModelBundle
from recommender.training.fit import fit_bundle
from tests.support.synthetic import synthetic_tables

ALS = {"factors": 2, "regularization": 0.1, "alpha": 2.0, "iterations": 15, "random_state": 1}


def two_group_bundle(seed: int = 11) -> ModelBundle:
    tables = build_tables(*synthetic_tables(np.random.default_rng(seed)))
    return fit_bundle(
        tables["interactions"],
        tables["items"].set_index("item_id")["title"],
        tables["users"].set_index("user_id"),
        als_config(ALS),
        version="test",
    )
