"""The learned ranker: LightGBM LambdaRank over candidate features, saved as LightGBM's own
text model plus a typed manifest of its features and their Feast names (never pickle).

``fit`` takes rows grouped by user (one LambdaRank query per user and cut-off); ``predict``
scores rows; ``contributions`` is LightGBM's ``pred_contrib`` (SHAP values per feature, the
last column the expected value), which the API's ``explain=true`` shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recommender.errors import CorruptArtifact
from recommender.ranking.features import FeatureSpec, feature_specs

log = logging.getLogger(__name__)

MODEL_FILE = "ranker.txt"
MANIFEST_FILE = "ranker.json"
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "lambdarank_truncation_level": 10,
    "learning_rate": 0.08,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    # one thread: on a shared machine an OpenMP team waiting for a busy core made a 100-round
    # fit 7x slower (72 s instead of 10 s on 195k rows)
    "num_threads": 1,
    "seed": 42,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
DEFAULT_ROUNDS = 400  # at most: early stopping on held-out queries picks the number
EARLY_STOPPING = 30
VALID_QUERIES = 0.15


class FeatureEntry(BaseModel):
    """One input column: name, kind (retriever / feast / derived), ``view:feature`` if Feast."""

    name: str
    kind: str
    feast: str | None = None


class RankerManifest(BaseModel):
    """What the ranker was trained on and expects as input."""

    model_config = ConfigDict(extra="ignore")

    retrievers: list[str]
    depth: int
    features: list[FeatureEntry]
    params: dict[str, Any] = Field(default_factory=dict)
    rounds: int = 0
    train_rows: int = 0
    train_queries: int = 0
    cutoffs: list[str] = Field(default_factory=list)
    label_days: float | None = None
    fit_seconds: float | None = None
    lightgbm_version: str = lgb.__version__

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def _entries(specs: list[FeatureSpec]) -> list[FeatureEntry]:
    return [FeatureEntry(name=s.name, kind=s.kind, feast=s.feast) for s in specs]


class Ranker:
    """A trained LambdaRank booster and its manifest."""

    def __init__(self, booster: lgb.Booster, manifest: RankerManifest) -> None:
        self.booster = booster
        self.manifest = manifest

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        retrievers: list[str],
        depth: int,
        params: dict[str, Any] | None = None,
        rounds: int = DEFAULT_ROUNDS,
        **manifest: Any,
    ) -> Ranker:
        """Fit on rows grouped by query (``groups``: rows per query, in order).

        Queries without any positive label teach LambdaRank nothing and are dropped.
        """
        specs = feature_specs(retrievers)
        if x.shape[1] != len(specs):
            raise ValueError(f"{x.shape[1]} feature columns, the ranker expects {len(specs)}")
        if int(np.sum(groups)) != len(y) or len(y) != len(x):
            raise ValueError("rows, labels and group sizes disagree")
        starts = np.r_[0, np.cumsum(groups)[:-1]]
        useful = np.add.reduceat(y, starts) > 0 if len(y) else np.zeros(0, dtype=bool)
        if not useful.any():
            raise ValueError("no query has a positive label: nothing to learn")
        full = {**DEFAULT_PARAMS, **(params or {})}
        names = [s.name for s in specs]
        # a seeded share of the useful queries is held out to stop boosting when it overfits
        rng = np.random.default_rng(int(full.get("seed", 0)))
        held = useful & (rng.random(len(groups)) < VALID_QUERIES)
        if held.sum() < 5 or held.sum() == useful.sum():
            held[:] = False
        fit_q = useful & ~held
        data = lgb.Dataset(
            x[np.repeat(fit_q, groups)],
            label=y[np.repeat(fit_q, groups)],
            group=groups[fit_q],
            feature_name=names,
        )
        sets: list[lgb.Dataset] = []
        callbacks: list[Callable[..., Any]] = []
        if held.any():
            rows = np.repeat(held, groups)
            sets = [lgb.Dataset(x[rows], label=y[rows], group=groups[held], reference=data)]
            callbacks = [lgb.early_stopping(EARLY_STOPPING, verbose=False)]
        t0 = time.perf_counter()
        booster = lgb.train(
            full, data, num_boost_round=rounds, valid_sets=sets, callbacks=callbacks
        )
        seconds = round(time.perf_counter() - t0, 2)
        if booster.best_iteration > 0:
            rounds = booster.best_iteration
        keep = np.repeat(fit_q, groups)
        log.info("ranker: %d rows, %d queries, %.1f s", keep.sum(), useful.sum(), seconds)
        return cls(
            booster,
            RankerManifest(
                retrievers=list(retrievers),
                depth=depth,
                features=_entries(specs),
                params=full,
                rounds=rounds,
                train_rows=int(keep.sum()),
                train_queries=int(fit_q.sum()),
                fit_seconds=seconds,
                **manifest,
            ),
        )

    def _check(self, x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != len(self.manifest.features):
            raise ValueError(
                f"expected {len(self.manifest.features)} feature columns, got {x.shape}"
            )

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        if not len(x):
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per row and feature, how much it moved the score (the last column: the base)."""
        self._check(x)
        return np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1))

    def importance(self) -> dict[str, float]:
        gains = self.booster.feature_importance(importance_type="gain")
        return dict(zip(self.manifest.feature_names, map(float, gains), strict=True))

    def save(self, directory: Path) -> list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / MODEL_FILE))
        (directory / MANIFEST_FILE).write_text(self.manifest.model_dump_json(indent=2))
        return [MODEL_FILE, MANIFEST_FILE]

    @classmethod
    def load(cls, directory: Path) -> Ranker:
        try:
            manifest = RankerManifest.model_validate_json((directory / MANIFEST_FILE).read_text())
            booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
        except (OSError, ValueError, lgb.basic.LightGBMError) as exc:
            raise CorruptArtifact(f"ranker in {directory} cannot be loaded: {exc}") from exc
        if booster.feature_name() != manifest.feature_names:
            raise CorruptArtifact(f"ranker in {directory}: model and manifest features differ")
        return cls(booster, manifest)

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / MODEL_FILE).exists()
