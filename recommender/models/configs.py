"""Typed parameters of every model: one frozen dataclass each, built into its model by
:meth:`build` (no ``**dict`` into a constructor). Grid points, tuning files and reports carry
parameters as plain mappings: :func:`model_config` turns one into its config, refusing unknown
models and parameters by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from recommender.models.als import ALSModel
from recommender.models.bpr import BPRModel
from recommender.models.ease import EASEModel
from recommender.models.itemknn import ItemKNNModel
from recommender.models.popularity import PopularityModel


@dataclass(frozen=True)
class PopularityConfig:
    name: ClassVar[str] = "popularity"

    def build(self) -> PopularityModel:
        return PopularityModel()


@dataclass(frozen=True)
class ItemKNNConfig:
    name: ClassVar[str] = "itemknn"
    neighbours: int = 100
    weighting: str = "bm25"

    def build(self) -> ItemKNNModel:
        return ItemKNNModel(neighbours=self.neighbours, weighting=self.weighting)


@dataclass(frozen=True)
class ALSConfig:
    name: ClassVar[str] = "als"
    factors: int = 64
    regularization: float = 5.0
    alpha: float = 1.0
    iterations: int = 20
    random_state: int = 42
    num_threads: int = 0
    weighting: str = "binary"

    def build(self) -> ALSModel:
        return ALSModel(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
            weighting=self.weighting,
        )


@dataclass(frozen=True)
class BPRConfig:
    name: ClassVar[str] = "bpr"
    factors: int = 64
    learning_rate: float = 0.01
    regularization: float = 0.01
    iterations: int = 300
    random_state: int = 42

    def build(self) -> BPRModel:
        return BPRModel(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.random_state,
        )


@dataclass(frozen=True)
class EASEConfig:
    name: ClassVar[str] = "ease"
    regularization: float = 400.0

    def build(self) -> EASEModel:
        return EASEModel(regularization=self.regularization)


ModelConfig = PopularityConfig | ItemKNNConfig | ALSConfig | BPRConfig | EASEConfig
CONFIGS: dict[str, type[ModelConfig]] = {
    c.name: c for c in (PopularityConfig, ItemKNNConfig, ALSConfig, BPRConfig, EASEConfig)
}


def model_config(name: str, params: Mapping[str, Any] | None = None) -> ModelConfig:
    """The typed config of model ``name`` from a mapping; ``ValueError`` names an unknown
    model or parameter."""
    cls = CONFIGS.get(name)
    if cls is None:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(CONFIGS)}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(params or {}) - known)
    if unknown:
        raise ValueError(
            f"bad parameters for model {name!r}: unknown {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known)) or 'none'})"
        )
    return cls(**dict(params or {}))


def als_config(params: Mapping[str, Any] | None = None) -> ALSConfig:
    """:func:`model_config` for ALS, typed as such."""
    config = model_config("als", params)
    assert isinstance(config, ALSConfig)
    return config
