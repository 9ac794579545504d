"""Thin I/O layer over Feast: open the repository, materialize, read and write features.

Serving and jobs talk to Feast only through these functions, so the rest of the library stays
pure. Feature views and services are referred to by the names in ``feature_repo/definitions.py``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import pandas as pd
import redis
import yaml
from feast import FeatureService, FeatureStore, RepoConfig
from feast.data_source import PushMode
from redis.exceptions import RedisError

from recommender.config import Settings
from recommender.errors import FeatureRepoNotApplied, FeatureStoreUnavailable
from recommender.publication import LIST_VIEW_PREFIX, SLOTS, LiveLists, read_live

log = logging.getLogger(__name__)

REALTIME_SERVICE = "serving_realtime_v1"
TRAINING_USER_SERVICE = "training_user_features_v1"
EVENTS_PUSH_SOURCE = "user_events_push"
CATALOG_VERSION_KEY = "reco:{project}:catalog_version"
_VAR = re.compile(r"\$\{(\w+)\}")


def repo_config(settings: Settings) -> RepoConfig:
    """Read ``feature_store.yaml``, expanding ``${VAR}`` from Settings first, then the env."""
    path = settings.feature_repo / "feature_store.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; is RECO_FEATURE_REPO set correctly?")
    values = {**os.environ, **settings.feast_env()}
    text = _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), path.read_text())
    config = RepoConfig(**yaml.safe_load(text))
    config.repo_path = settings.feature_repo.resolve()
    return config


def open_store(settings: Settings) -> FeatureStore:
    """A FeatureStore for the configured repository, project and Redis."""
    return FeatureStore(
        repo_path=str(settings.feature_repo.resolve()), config=repo_config(settings)
    )


def precomputed_service(slot: str) -> str:
    """The feature service of one list slot (``serving_precomputed_a`` / ``_b``)."""
    return f"serving_precomputed_{slot}"


def live_lists(settings: Settings) -> LiveLists | None:
    """Which list slot is live, and which run filled it (None before the first run)."""
    client = redis_client(settings)
    try:
        return read_live(client, settings.feast_project)
    finally:
        client.close()


def redis_client(settings: Settings, timeout: float = 30.0) -> redis.Redis:
    """A plain client for the job side's own keys (pointer, lock, catalog version)."""
    extra = (
        {"password": settings.redis_password.get_secret_value()} if settings.redis_password else {}
    )
    return redis.Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=5, **extra
    )


def check_serving_ready(store: FeatureStore) -> None:
    """Fail fast when the feature services serving asks for are not registered."""
    registered = {s.name for s in store.list_feature_services()}
    missing = {precomputed_service(slot) for slot in SLOTS} | {REALTIME_SERVICE}
    missing -= registered
    if missing:
        raise FeatureRepoNotApplied(
            f"feature service(s) {sorted(missing)} are not registered in project "
            f"{store.project!r} at {store.repo_path}; run `feast apply` in the feature repo"
        )


def materialize(store: FeatureStore, end: datetime, earliest: datetime) -> dict[str, str]:
    """Load offline features into Redis up to ``end``.

    Views never materialized before get the full range from ``earliest`` (Feast's incremental
    mode would start at ``now - ttl`` and silently skip older data); the others continue
    incrementally. The list views are written directly by the nightly job instead.
    """
    done: dict[str, str] = {}
    first: list[str] = []
    incremental: list[str] = []
    for view in store.list_feature_views():
        if view.name.startswith(LIST_VIEW_PREFIX):
            continue
        (incremental if view.most_recent_end_time else first).append(view.name)
    if first:
        store.materialize(start_date=earliest, end_date=end, feature_views=first)
        done.update(dict.fromkeys(first, "full"))
    if incremental:
        store.materialize_incremental(end_date=end, feature_views=incremental)
        done.update(dict.fromkeys(incremental, "incremental"))
    return done


def historical_user_features(store: FeatureStore, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time correct user features for ``entity_df`` (user_id, event_timestamp)."""
    service = store.get_feature_service(TRAINING_USER_SERVICE)
    return store.get_historical_features(entity_df=entity_df, features=service).to_df()


def write_lists_feast(store: FeatureStore, view: str, lists: pd.DataFrame) -> None:
    """Write lists through Feast's own write path, without its timestamp read (only the
    lock holder writes the unpublished slot). For online stores the fast writer
    (:mod:`recommender.listwrite`) does not speak, such as Redis Cluster."""
    config = store.config.online_store
    previous = getattr(config, "skip_dedup", None)
    if previous is not None:
        config.skip_dedup = True
    try:
        store.write_to_online_store(view, lists)
    finally:
        if previous is not None:
            config.skip_dedup = previous


@lru_cache(maxsize=64)
def _feature_service(store: FeatureStore, name: str) -> FeatureService:
    """Resolve a service once per store: even Feast's cached lookup costs ~13% of a warm
    request. A changed service is picked up when the API restarts."""
    return store.get_feature_service(name, allow_cache=True)


def _online(store: FeatureStore, service: str, user_id: str) -> dict[str, Any]:
    try:
        response = store.get_online_features(
            features=_feature_service(store, service),
            entity_rows=[{"user_id": user_id}],
        ).to_dict(include_event_timestamps=True)
    except (RedisError, ConnectionError, TimeoutError, OSError) as exc:
        raise FeatureStoreUnavailable(f"online store did not answer: {exc}") from exc
    return {name: values[0] for name, values in response.items()}


def read_precomputed(
    store: FeatureStore, user_id: str, live: LiveLists | None
) -> dict[str, Any] | None:
    """The live nightly list of a user through Feast's ``get_online_features`` (as feature
    consumers read it), or None when there is none."""
    if live is None:
        return None
    row = _online(store, precomputed_service(live.slot), user_id)
    if not row.get("rec_item_ids") or row.get("run_id") != live.run_id:
        return None
    ts = row.get("rec_item_ids__ts") or 0
    return {
        "item_ids": list(row["rec_item_ids"]),
        "scores": list(row.get("rec_scores") or []),
        "model_version": row.get("model_version"),
        "run_id": row.get("run_id"),
        "generated_at": datetime.fromtimestamp(ts, timezone.utc) if ts else None,
    }


def push_recent_items(
    store: FeatureStore, user_id: str, item_ids: Sequence[str], when: datetime | None = None
) -> None:
    """Push a user's recent items (newest first) to the online store through the push source."""
    push_recent_lists(store, {user_id: item_ids}, when or datetime.now(timezone.utc))


def push_recent_lists(
    store: FeatureStore, lists: Mapping[str, Sequence[str]], when: datetime
) -> None:
    """Push several users' recent-item lists (newest first) in one Feast push."""
    if not lists:
        return
    df = pd.DataFrame(
        {
            "user_id": list(lists),
            "recent_item_ids": [list(v) for v in lists.values()],
            "event_timestamp": [when] * len(lists),
        }
    )
    store.push(EVENTS_PUSH_SOURCE, df, to=PushMode.ONLINE)


def bump_catalog_version(settings: Settings) -> int:
    """Tell running APIs that item metadata changed (they re-read it within a second)."""
    client = redis_client(settings, timeout=5)
    try:
        return int(client.incr(CATALOG_VERSION_KEY.format(project=settings.feast_project)))  # type: ignore[arg-type]
    finally:
        client.close()


def write_profile(store: FeatureStore, user_id: str, profile: Mapping[str, Any]) -> None:
    """Write one user's profile to the online store (sign-up before the next batch run)."""
    df = pd.DataFrame(
        {
            "user_id": [user_id],
            "age": [profile.get("age")],
            "gender": [profile.get("gender", "")],
            "occupation": [profile.get("occupation", "")],
            "zip_code": [profile.get("zip_code", "")],
            "event_timestamp": [datetime.now(timezone.utc)],
        }
    )
    store.write_to_online_store("user_profile", df)
