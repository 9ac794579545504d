"""What `reco train` hands the ranker: a seeded user sample, cut-offs from all interactions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.config import Settings
from recommender.evaluation.futuretuning import FUTURE_GRID
from recommender.pipeline.evidence import tune_on_future
from recommender.pipeline.train import (
    RANKER_CUTOFFS,
    RANKER_LABEL_DAYS,
    ranker_data,
    training_rows,
)


def _interactions(n_users: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = n_users * 5
    start = pd.Timestamp("2026-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "user_id": [f"u{k}" for k in np.repeat(np.arange(n_users), 5)],
            "item_id": [f"i{k}" for k in rng.integers(0, 50, n)],
            "event_timestamp": start + pd.to_timedelta(rng.integers(0, 90 * 86400, n), "s"),
        }
    )


def test_the_ranker_gets_a_seeded_sample_and_cutoffs_from_everyone(tmp_path: Path) -> None:
    interactions = _interactions(300)
    latest = interactions["event_timestamp"].idxmax()
    settings = Settings(feature_repo=tmp_path, ranker_fit_users=100, seed=7)  # type: ignore[call-arg]
    data = ranker_data(settings, interactions)
    assert data.sampled == 100 and data.sample["user_id"].nunique() == 100
    # every sampled user's interactions, all of them
    kept = interactions[interactions["user_id"].isin(data.sample["user_id"])]
    assert len(data.sample) == len(kept) == 500
    again = ranker_data(settings, interactions)
    assert set(again.sample["user_id"]) == set(data.sample["user_id"])  # seeded
    # the cut-offs come from the newest interaction of all users, sampled or not
    end = interactions.loc[latest, "event_timestamp"]
    assert len(data.cutoffs) == RANKER_CUTOFFS
    assert data.cutoffs[-1] == (end - pd.Timedelta(days=RANKER_LABEL_DAYS)).floor("D")
    whole = ranker_data(Settings(feature_repo=tmp_path, ranker_fit_users=1000), interactions)  # type: ignore[call-arg]
    assert whole.sampled is None and len(whole.sample) == len(interactions)


def test_a_model_never_trains_on_events_stamped_after_its_training_time() -> None:
    interactions = _interactions(20)
    now = interactions["event_timestamp"].max() - pd.Timedelta(seconds=1)
    future = interactions["event_timestamp"] >= now  # e.g. a client clock a minute fast
    rows = training_rows(interactions, None, now.to_pydatetime())
    assert len(rows) == len(interactions) - future.sum() and rows["event_timestamp"].max() < now
    # an explicit cut-off in the future is capped at now too; an earlier one wins
    assert training_rows(interactions, now.to_pydatetime() + timedelta(days=1), now).equals(rows)
    early = pd.Timestamp("2026-02-01", tz="UTC").to_pydatetime()
    assert training_rows(interactions, early, now)["event_timestamp"].max() < early


def test_als_is_tuned_on_the_future_unless_told_otherwise(tmp_path: Path) -> None:
    interactions = _interactions(200).assign(rating=1.0)
    base = {"factors": 8, "iterations": 3, "regularization": 20.0, "alpha": 2.0}
    settings = Settings(feature_repo=tmp_path)  # type: ignore[call-arg]
    params, source, record = tune_on_future(settings, interactions, dict(base), {"kind": "x"})
    assert record is not None and len(record.scores) == len(FUTURE_GRID["regularization"]) * len(
        FUTURE_GRID["alpha"]
    )
    assert {k: params[k] for k in FUTURE_GRID} == record.best and params["factors"] == 8
    assert source == {"kind": "future", "before": {"kind": "x"}, "chose": sorted(FUTURE_GRID)}
    # judged before the serving paths' replay cut-off: choices never see the judged part
    sample_ts = interactions["event_timestamp"]
    assert pd.Timestamp(record.cutoff) == sample_ts.quantile(0.8)
    # an explicit RECO_ALS_* value stays, the rest is still chosen
    pinned = Settings(feature_repo=tmp_path, als_regularization=20.0)  # type: ignore[call-arg]
    params, source, record = tune_on_future(pinned, interactions, dict(base), {"kind": "x"})
    assert params["regularization"] == 20.0 and source["chose"] == ["alpha"]
    assert record is not None and all(name.startswith("alpha=") for name in record.scores)
    off = Settings(feature_repo=tmp_path, future_tuning=False)  # type: ignore[call-arg]
    unchanged = tune_on_future(off, interactions, dict(base), {"kind": "x"})
    assert unchanged == (base, {"kind": "x"}, None)
