"""Drift monitoring (I/O edge of :mod:`recommender.lifecycle.drift`): feature samples from
Feast, lists from the offline table of published runs, the report on disk, the summary in
Redis (APIs export it as Prometheus gauges).

``reco monitor`` compares the live model's training snapshot of user features with Feast's
features of the same users now (:func:`recent_features`), and the live run's lists with the
previous run's. The nightly job runs the same after publishing, and, before promoting a
candidate, the same checks on the candidate (its snapshot against production's, its top-10
on a user sample against the live lists): a suspicious candidate is not promoted
automatically.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from recommender.config import LifecycleSettings, Settings
from recommender.contract.published import LiveLists, history, monitor_key, read_live
from recommender.data.lists import published_dir, staging_dir
from recommender.data.tables import read_table
from recommender.featurestore.repo import historical_user_features, open_store, redis_client
from recommender.lifecycle.drift import Thresholds, feature_drift, list_drift
from recommender.models.topn import factor_top_n
from recommender.training.artifacts import ModelBundle, load_bundle, training_features

log = logging.getLogger(__name__)


def thresholds(lifecycle: LifecycleSettings) -> Thresholds:
    """The drift thresholds of ``RECO_DRIFT_*``."""
    return Thresholds(
        lifecycle.drift_max_psi,
        lifecycle.drift_min_overlap,
        lifecycle.drift_max_coverage_drop,
        lifecycle.drift_max_gini,
    )


FEATURES = (
    "age",
    "gender",
    "occupation",
    "interactions_30d",
    "mean_rating_30d",
    "interactions_total",
    "mean_rating_total",
)
LIST_COLUMNS = ["user_id", "rec_item_ids", "rec_scores"]


def _run_folder(data_dir: Path, run_id: str) -> Path | None:
    for folder in (published_dir(data_dir) / run_id, staging_dir(data_dir, run_id)):
        if folder.exists() and any(folder.glob("*.parquet")):
            return folder
    return None


def run_users(data_dir: Path, run_id: str, n: int, seed: int) -> pa.Array | None:
    """A seeded sample of at most ``n`` of the run's users (all of them when it has fewer),
    read from the user column alone; None when the run has no lists on disk."""
    folder = _run_folder(data_dir, run_id)
    if folder is None:
        return None
    ids = ds.dataset(folder, format="parquet").to_table(columns=["user_id"])["user_id"]
    if len(ids) <= n:
        return ids.combine_chunks()
    picks = np.sort(np.random.default_rng(seed).choice(len(ids), n, replace=False))
    return ids.take(pa.array(picks)).combine_chunks()


def read_run(data_dir: Path, run_id: str, users: pa.Array | None = None) -> pd.DataFrame | None:
    """One run's lists from the offline table (published, else staged), or None; only the
    rows of ``users`` when given (filtered batch by batch while reading: the lists of a
    million users are gigabytes in pandas, which the monitor's figures do not need)."""
    folder = _run_folder(data_dir, run_id)
    if folder is None:
        return None
    where = None if users is None else pc.field("user_id").isin(users)
    table = ds.dataset(folder, format="parquet").to_table(columns=LIST_COLUMNS, filter=where)
    return table.to_pandas()


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n, random_state=seed) if len(frame) > n else frame


def recent_features(settings: Settings, user_ids: list[str]) -> pd.DataFrame:
    """The users' features from Feast as of the newest interaction in the offline store (the
    data's own "now": on a live system the values the online store holds; on a replayed
    dataset such as MovieLens, not years of empty 30-day windows after its last event)."""
    events = read_table(settings.data_dir, "interactions", ["event_timestamp"])
    as_of = events["event_timestamp"].max() + pd.Timedelta(seconds=1)
    entity_df = pd.DataFrame({"user_id": user_ids, "event_timestamp": as_of})
    return historical_user_features(open_store(settings), entity_df)


def candidate_lists(bundle: ModelBundle, user_ids: list[str], k: int = 10) -> pd.DataFrame:
    """Top-k of ``bundle`` for the users it knows (seen items excluded), as list rows."""
    rows = bundle.users.rows(user_ids)
    known = rows >= 0
    rows = rows[known]
    items, scores = factor_top_n(
        bundle.als.user_factors[rows], bundle.als.item_factors, bundle.user_items[rows], k
    )
    ids = bundle.items.ids
    return pd.DataFrame(
        {
            "user_id": np.asarray(user_ids, dtype=object)[known],
            "rec_item_ids": [[str(ids[i]) for i in r if i >= 0] for r in items],
            "rec_scores": [list(map(float, s)) for s in scores],
        }
    )


def candidate_checks(
    settings: Settings, candidate: ModelBundle, production: str | None, live: LiveLists | None
) -> dict[str, Any]:
    """Drift of a candidate before promotion: features against production's snapshot, top-10
    on a user sample against the live lists. ``reasons`` is empty when nothing is off."""
    out: dict[str, Any] = {"features": None, "lists": None}
    base = training_features(settings.artifacts_dir, production) if production else None
    if base is not None and candidate.features is not None:
        table = feature_drift(
            base, candidate.features, [f for f in FEATURES if f in base and f in candidate.features]
        )
        out["features"] = table
    users = (
        run_users(
            settings.data_dir, live.run_id, settings.lifecycle.drift_sample_users, settings.seed
        )
        if live is not None
        else None
    )
    if (
        live is not None
        and users is not None
        and (sample := read_run(settings.data_dir, live.run_id, users)) is not None
    ):
        mine = candidate_lists(candidate, sample["user_id"].astype(str).tolist())
        out["lists"] = list_drift(mine, sample, len(candidate.items))
    out["reasons"] = thresholds(settings.lifecycle).verdict(out["features"], out["lists"])
    return out


def monitor(
    settings: Settings, live: LiveLists | None = None, publish: bool = True
) -> dict[str, Any]:
    """Drift of the live model and run; the summary goes to Redis (for /metrics) when
    ``publish``. Raises nothing for missing history: figures that cannot be computed are null."""
    client = redis_client(settings, timeout=10)
    try:
        live = live or read_live(client, settings.feast_project)
        runs = history(client, settings.feast_project, 100)
        if live is None:
            return {"live": None, "suspicious": False, "reasons": ["nothing published yet"]}
        previous = next((r for r in runs if r.run_id != live.run_id), None)
        bundle = load_bundle(settings.artifacts_dir, live.model_version)
        # the same seeded sample of users from both runs (overlap compares a user's lists)
        users = run_users(
            settings.data_dir, live.run_id, settings.lifecycle.drift_list_users, settings.seed
        )
        current, before = None, None
        if users is not None:  # None: the live run has no lists on disk
            current = read_run(settings.data_dir, live.run_id, users)
            before = read_run(settings.data_dir, previous.run_id, users) if previous else None
        lists = list_drift(current, before, len(bundle.items)) if current is not None else None
        base = training_features(settings.artifacts_dir, live.model_version)
        features = None
        if base is not None and len(base):
            users = (
                _sample(base, settings.lifecycle.drift_sample_users, settings.seed)["user_id"]
                .astype(str)
                .tolist()
            )
            recent = recent_features(settings, users)
            names = [f for f in FEATURES if f in base and f in recent]
            features = feature_drift(base, recent, names)
        reasons = thresholds(settings.lifecycle).verdict(features, lists)
        summary = {
            "at": datetime.now(timezone.utc).isoformat(),
            "run_id": live.run_id,
            "previous_run_id": previous.run_id if previous else None,
            "model_version": live.model_version,
            "features": _records(features),
            "lists": lists,
            "suspicious": bool(reasons),
            "reasons": reasons,
        }
        if publish:
            client.set(monitor_key(settings.feast_project), json.dumps(clean(summary)))
        return clean(summary)
    finally:
        client.close()


def clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to null (browsers reject NaN)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _records(table: pd.DataFrame | None) -> list[dict[str, Any]]:
    return [] if table is None else clean(table.to_dict("records"))
