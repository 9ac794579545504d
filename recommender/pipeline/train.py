"""Training job: interactions up to a cutoff -> hold-out metrics -> ALS (+ popularity, profile
model, FAISS) on everything -> a versioned artifact with its manifest.

Steps: load -> choose parameters (ALS's on the future: :mod:`recommender.pipeline.evidence`)
-> evaluate on a hold-out -> fit on all -> profile model from point-in-time features (Feast)
-> index -> replay every serving path (and the ranked bundle) on the future, route the paths
that lose, keep the ranker where it wins -> the ranker -> save -> publish.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import pandas as pd
from feast import FeatureStore

from recommender.batch.rankedlists import item_genres
from recommender.config import Settings
from recommender.data.tables import read_table
from recommender.errors import InvalidDataset
from recommender.evaluation.protocols import sample_users, user_temporal
from recommender.evaluation.runner import EvalData, evaluate_model
from recommender.featurestore.repo import historical_user_features, open_store
from recommender.models.configs import als_config
from recommender.pipeline.evidence import (
    RANKER_CUTOFFS,
    RANKER_LABEL_DAYS,
    ReplayTables,
    path_evidence,
    ranking_config,
    tune_on_future,
)
from recommender.ranking.dataset import FeastReader
from recommender.ranking.model import default_cutoffs, fit_two_stage
from recommender.training import registry
from recommender.training.artifacts import ModelBundle, new_version, save_bundle
from recommender.training.fit import fit_bundle

log = logging.getLogger(__name__)


def als_params(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """ALS parameters and where they came from: an explicit RECO_ALS_* setting wins, then the
    tuning file (if any), then the defaults (the documented ML-100K search)."""
    als = settings.training.als
    params: dict[str, Any] = als.model_dump()
    source: dict[str, Any] = {"kind": "defaults"}
    path = settings.als_tuning_file
    if path.exists():
        try:
            tuned = json.loads(path.read_text())
            best = tuned["best_params"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidDataset(f"{path} is not a tuning result: {exc}") from exc
        explicit = set(als.model_fields_set)
        params.update({k: v for k, v in best.items() if k in params and k not in explicit})
        source = {
            "kind": "tuned",
            "file": str(path),
            "dataset": tuned.get("dataset"),
            "protocol": tuned.get("protocol"),
            "metric": tuned.get("metric"),
            "valid_score": tuned.get("valid_score"),
            "overridden_by_settings": sorted(explicit & set(best)),
        }
    params["random_state"] = settings.seed
    return params, source


def holdout_metrics(
    settings: Settings, interactions: pd.DataFrame, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Metrics@10 of ALS and popularity on a per-user temporal hold-out (last 20%), ranked
    for at most ``settings.training.eval_max_users`` users (a seeded sample on large
    catalogs). On catalogs of more than ``settings.training.holdout_fit_users`` users the
    hold-out model is fitted on a seeded sample of that many users: its metrics estimate the
    full model's at a fraction
    of a second full ALS fit (the final model is still fitted on everyone)."""
    interactions, sampled = sample_users(
        interactions, settings.training.holdout_fit_users, settings.seed
    )
    split = user_temporal(interactions, test_fraction=0.2)
    data = EvalData.from_split(split)
    params = params or als_params(settings)[0]
    out: dict[str, Any] = {"protocol": {**split.summary(), "sampled_users": sampled}}
    for name, p in (("als", params), ("popularity", {})):
        out[name] = evaluate_model(
            name,
            p,
            data,
            ks=(10,),
            refit=True,
            max_users=settings.training.eval_max_users,
            seed=settings.seed,
        )["metrics"]
    return out


def fit_ranker(
    settings: Settings,
    bundle: ModelBundle,
    data: RankerData,
    items_table: pd.DataFrame,
    store: FeatureStore,
) -> None:
    """The two-stage ranker (issue 15, ``RECO_RANKER``): training rows from Feast's offline
    store at ``data.cutoffs`` for the sampled users' interactions (:func:`ranker_data`; the
    retrievers are refitted at every cut-off)."""
    t0 = time.perf_counter()
    bundle.ranking = fit_two_stage(
        data.sample,
        bundle.items,
        FeastReader(store),
        item_genres(items_table, bundle.items.ids),
        data.cutoffs,
        label_days=RANKER_LABEL_DAYS,
        config=ranking_config(settings),
    )
    summary = bundle.ranking.ranker.manifest.model_dump(
        include={"train_rows", "train_queries", "fit_seconds", "cutoffs"}
    )
    bundle.manifest.metrics["ranker"] = {**summary, "sampled_users": data.sampled}
    log.info("ranker trained in %.1fs: %s", time.perf_counter() - t0, summary)


class RankerData(NamedTuple):
    """What the ranker trains from (:func:`ranker_data`)."""

    sample: pd.DataFrame  # the sampled users' interactions
    sampled: int | None  # the sample's size (None: every user)
    cutoffs: list[pd.Timestamp]


def ranker_data(settings: Settings, interactions: pd.DataFrame) -> RankerData:
    """A seeded sample of at most ``settings.training.ranker.fit_users`` users' interactions, and
    three cut-offs two weeks apart (from all interactions)."""
    sample, sampled = sample_users(interactions, settings.training.ranker.fit_users, settings.seed)
    cutoffs = default_cutoffs(interactions, n=RANKER_CUTOFFS, label_days=RANKER_LABEL_DAYS)
    return RankerData(sample, sampled, cutoffs)


def training_rows(
    interactions: pd.DataFrame, cutoff: datetime | None, now: datetime
) -> pd.DataFrame:
    """Interactions before ``cutoff``, and never after ``now``: events may arrive stamped a
    little in the future (clock skew, ``RECO_MAX_EVENT_FUTURE_SECONDS``); a model trained now
    leaves them to the next training, so its "data to" is never in the future."""
    end = min(cutoff, now) if cutoff is not None else now
    later = interactions["event_timestamp"] >= end
    if cutoff is None and later.any():
        log.info("%d interactions stamped after now are left to the next training", later.sum())
    return interactions[~later]


def train(
    settings: Settings,
    cutoff: datetime | None = None,
    store: FeatureStore | None = None,
    publish: bool = True,
) -> ModelBundle:
    """Train a new model version from interactions before ``cutoff`` and save it."""
    t0 = time.perf_counter()
    interactions = training_rows(
        read_table(settings.data_dir, "interactions"), cutoff, datetime.now(timezone.utc)
    )
    if interactions.empty:
        raise InvalidDataset(f"no interactions before the cutoff {cutoff}")
    items_table = read_table(settings.data_dir, "items")
    as_of = interactions["event_timestamp"].max() + timedelta(seconds=1)
    params, source = als_params(settings)
    params, source, future = tune_on_future(settings, interactions, params, source)

    metrics = holdout_metrics(settings, interactions, params)
    log.info(
        "hold-out NDCG@10: als=%.4f popularity=%.4f",
        metrics["als"]["ndcg@10"],
        metrics["popularity"]["ndcg@10"],
    )

    # The profile model learns from user attributes: its rows come point-in-time from Feast.
    store = store or open_store(settings)
    user_ids = sorted(interactions["user_id"].unique())
    entity_df = pd.DataFrame({"user_id": user_ids, "event_timestamp": as_of})
    profiles = historical_user_features(store, entity_df).set_index("user_id")

    bundle = fit_bundle(
        interactions,
        items_table.set_index("item_id")["title"],
        profiles,
        als_config(params),
        version=new_version(),
        manifest={
            "created_at": datetime.now(timezone.utc).isoformat(),
            "model": "als",
            "params": params,
            "params_source": source,
            "profile_model": {"kind": "ridge", "l2": 10.0},
            "data": {
                "interactions": len(interactions),
                "users": len(user_ids),
                "items": int(interactions["item_id"].nunique()),
                "first_event": interactions["event_timestamp"].min().isoformat(),
                "last_event": interactions["event_timestamp"].max().isoformat(),
                "cutoff": cutoff.isoformat() if cutoff else None,
                "features_as_of": as_of.isoformat(),
            },
            "metrics": metrics,
        },
    )
    bundle.manifest.future_tuning = future
    bundle.manifest.profile_model["tokens"] = len(bundle.profile.tokens)
    bundle.features = profiles.reset_index()  # the drift baseline (`reco monitor`)
    tables = ReplayTables(
        profiles,
        items_table.set_index("item_id")["title"],
        users=read_table(settings.data_dir, "users") if settings.training.ranker.enabled else None,
        items=items_table,
    )
    evidence, choice = path_evidence(
        settings, interactions, params, tables, ranker=settings.training.ranker.enabled
    )
    bundle.manifest.served_paths, bundle.manifest.ranker_choice = evidence, choice
    bundle.manifest.popularity_blend = evidence.popularity_blend if evidence else 0.0
    if choice is not None and choice.kept:
        data = ranker_data(settings, interactions)
        del interactions  # the ranker reads its sample only (at 1M users the rest is GBs)
        fit_ranker(settings, bundle, data, items_table, store)
    elif choice is not None:
        bundle.manifest.metrics["ranker"] = {"skipped": choice.reason}
    bundle.manifest.train_seconds = round(time.perf_counter() - t0, 3)
    previous = registry.production(settings.artifacts_dir)
    path = save_bundle(bundle, settings.artifacts_dir, publish=publish)
    if publish:  # journaled, so that a later rollback knows this version was production
        registry.record(
            settings.artifacts_dir,
            "publish",
            bundle.version,
            previous=previous,
            reason="reco train",
        )
    log.info("trained model %s in %.1fs -> %s", bundle.version, time.perf_counter() - t0, path)
    return bundle
