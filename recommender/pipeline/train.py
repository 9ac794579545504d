"""Training job: interactions up to a cutoff -> hold-out metrics -> ALS (+ popularity, profile
model, FAISS) on everything -> a versioned artifact with its manifest.

Steps: load -> choose parameters -> evaluate on a hold-out -> fit on all -> profile model from
point-in-time features (Feast) -> index -> save -> publish.
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
from recommender.evaluation.futuretuning import FUTURE_GRID, NoFuture, choose_params
from recommender.evaluation.pathevidence import served_paths
from recommender.evaluation.protocols import sample_users, user_temporal
from recommender.evaluation.replay import beyond_accuracy, choose_blend, replay_served
from recommender.evaluation.runner import EvalData, evaluate_model
from recommender.featurestore.repo import historical_user_features, open_store
from recommender.models.configs import als_config
from recommender.ranking.dataset import FeastReader
from recommender.ranking.model import default_cutoffs, fit_two_stage
from recommender.ranking.twostage import RankingConfig
from recommender.training import registry
from recommender.training.artifacts import ModelBundle, new_version, save_bundle
from recommender.training.fit import fit_bundle
from recommender.training.manifest import FutureTuning, ServedPaths

log = logging.getLogger(__name__)
RANKER_CUTOFFS = 3
PATH_REPLAY_QUANTILE = 0.9  # the serving paths' replay: trained before it, judged after
BLEND_QUANTILE = 0.8  # the new users' popularity blend is chosen on this earlier cut-off
POPULARITY_BLENDS = (0.0, 0.25, 0.5, 0.75, 0.9)
RANKER_LABEL_DAYS = 14.0


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


class Cuts(NamedTuple):
    """Choices (ALS's parameters, the new users' blend) are made at ``choose`` on what
    happened before ``judge``; the serving paths are judged after ``judge``."""

    choose: pd.Timestamp
    judge: pd.Timestamp


def judged_sample(settings: Settings, interactions: pd.DataFrame) -> tuple[pd.DataFrame, Cuts]:
    """The seeded sample of users every choice on the future is made on, and its cut-offs."""
    sample, _ = sample_users(interactions, settings.training.holdout_fit_users, settings.seed)
    ts = sample["event_timestamp"]
    return sample, Cuts(ts.quantile(BLEND_QUANTILE), ts.quantile(PATH_REPLAY_QUANTILE))


def tune_on_future(
    settings: Settings,
    interactions: pd.DataFrame,
    params: dict[str, Any],
    source: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], FutureTuning | None]:
    """ALS's regularization and alpha chosen on the future (:mod:`~recommender.evaluation.
    futuretuning`): fitted on the sample before its 80% time quantile, judged on its
    returning users up to the 90% quantile (what follows is the serving paths' replay). An
    explicit RECO_ALS_* value stays; off with ``RECO_FUTURE_TUNING=false``."""
    explicit = set(settings.training.als.model_fields_set)
    grid = {k: v for k, v in FUTURE_GRID.items() if k not in explicit}
    if not settings.training.future_tuning or not grid:
        return params, source, None
    sample, cuts = judged_sample(settings, interactions)
    earlier = sample[sample["event_timestamp"] < cuts.judge]
    try:
        chosen, record = choose_params(earlier, cuts.choose.to_pydatetime(), params, grid)
    except NoFuture as exc:
        log.warning("ALS parameters not tuned on the future: %s", exc)
        return params, source, None
    log.info(
        "ALS on the future (%d returning users): %s, NDCG@10 %.4f (popularity %.4f)",
        record.users,
        record.best,
        max(record.scores.values()),
        record.popularity,
    )
    return chosen, {"kind": "future", "before": source, "chose": sorted(grid)}, record


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
        config=RankingConfig(
            depth=settings.training.ranker.depth, rounds=settings.training.ranker.rounds
        ),
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


def path_evidence(
    settings: Settings,
    interactions: pd.DataFrame,
    params: dict[str, Any],
    profiles: pd.DataFrame,
    titles: pd.Series,
) -> ServedPaths | None:
    """Each serving path against its popularity fallback on a replay inside the training data
    (fitted with the same parameters on a seeded sample of users' interactions before their
    90% time quantile, scored on what those users did after it), and the route that implies;
    None (logged) when the data leave one side of the cut-off empty."""
    sample, (validation, cutoff) = judged_sample(settings, interactions)
    before_judged = sample[sample["event_timestamp"] < cutoff]
    try:  # the blend is chosen on an earlier cut-off, on what happened before the judged part
        earlier, after, _ = replay_served(
            before_judged, profiles, titles, validation.to_pydatetime(), params, known=False
        )
        blend, tried = choose_blend(earlier, after, profiles, POPULARITY_BLENDS)
        log.info("new users' popularity blend %.2f (NDCG@10 by weight: %s)", blend, tried)
        bundle, _, served = replay_served(
            sample, profiles, titles, cutoff.to_pydatetime(), params, popularity_blend=blend
        )
    except ValueError as exc:
        log.warning("serving paths not replayed: %s", exc)
        return None
    describe = beyond_accuracy(bundle, 10)
    evidence = served_paths(served, cutoff.isoformat(), seed=settings.seed, describe=describe)
    evidence.popularity_blend, evidence.blend_scores = blend, {str(w): s for w, s in tried.items()}
    for path in evidence.paths.values():
        log.info(
            "path %s: NDCG@10 %.4f vs popularity %.4f (%d users) -> %s",
            path.path,
            path.ndcg,
            path.fallback_ndcg,
            path.users,
            path.route,
        )
    return evidence


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
    if settings.training.ranker.enabled:
        data = ranker_data(settings, interactions)
        del interactions  # the ranker reads its sample only (at 1M users the rest is GBs)
        fit_ranker(settings, bundle, data, items_table, store)
    else:  # the two-stage paths are not replayed yet: only the one-stage bundle's are
        titles = items_table.set_index("item_id")["title"]
        evidence = path_evidence(settings, interactions, params, profiles, titles)
        bundle.manifest.served_paths = evidence
        bundle.manifest.popularity_blend = evidence.popularity_blend if evidence else 0.0
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
