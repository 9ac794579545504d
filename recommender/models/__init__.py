"""Models behind one small contract (see ``base.Recommender``)."""

from recommender.models.als import ALSModel
from recommender.models.base import Recommender
from recommender.models.popularity import PopularityModel

MODELS: dict[str, type[Recommender]] = {"als": ALSModel, "popularity": PopularityModel}

__all__ = ["ALSModel", "MODELS", "PopularityModel", "Recommender"]
