"""The model contract (``base.Recommender``) and the models: ALS, EASE, item-kNN, BPR, popularity,
profile cold start. Pure (fit/recommend on CSR matrices) but save/load; ``build_model`` by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recommender.models.als import ALSModel
from recommender.models.base import Recommender
from recommender.models.bpr import BPRModel
from recommender.models.configs import model_config
from recommender.models.ease import EASEModel
from recommender.models.itemknn import ItemKNNModel
from recommender.models.popularity import PopularityModel

MODELS: dict[str, type[Recommender]] = {
    "popularity": PopularityModel,
    "itemknn": ItemKNNModel,
    "als": ALSModel,
    "bpr": BPRModel,
    "ease": EASEModel,
}


def build_model(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A fresh, unfitted model from its typed config (:mod:`recommender.models.configs`);
    unknown names or parameters raise ``ValueError``."""
    return model_config(name, params).build()


__all__ = [
    "ALSModel",
    "BPRModel",
    "EASEModel",
    "ItemKNNModel",
    "MODELS",
    "PopularityModel",
    "Recommender",
    "build_model",
]
