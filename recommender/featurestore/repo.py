"""Thin I/O layer over Feast: open the repository, materialize, read and write features.

Serving and jobs talk to Feast only through these functions, so the rest of the library stays
pure. Feature views and services are referred to by the constants in ``names.py``.
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
import yaml
from feast import FeatureService, FeatureStore, RepoConfig
from feast.constants import FEAST_FS_YAML_FILE_PATH_ENV_NAME
from feast.data_source import PushMode
from redis.exceptions import RedisError

from recommender.config import Settings
from recommender.errors import FeatureRepoNotApplied, FeatureStoreUnavailable
from recommender.featurestore.keys import project_key, project_pattern
from recommender.featurestore.names import (
    EVENTS_PUSH_SOURCE,
    LIST_VIEW_PREFIX,
    REALTIME_SERVICE,
    SLOTS,
    TRAINING_USER_SERVICE,
    USER_PROFILE,
    precomputed_service,
)
from recommender.featurestore.redisclient import RedisClient, make_redis
from recommender.fileio import write_text_atomic

log = logging.getLogger(__name__)


def catalog_version_key(project: str) -> str:
    """Bumped when item metadata changes; APIs poll it (``reco:{<project>}:catalog_version``)."""
    return project_key(project, "catalog_version")


# the ``.format(project=...)`` form of catalog_version_key (braces doubled), for callers that
# have not moved to the function yet
CATALOG_VERSION_KEY = "reco:{{{project}}}:catalog_version"
_VAR = re.compile(r"\$\{(\w+)\}")


def config_dict(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``feature_store.yaml`` as a dict with the settings applied: ``${VAR}``s (the
    ``deploy/feast`` templates) expanded from ``env``, Settings, then the environment; the
    project set to ``RECO_FEAST_PROJECT``; a plain Redis online store at ``RECO_REDIS_URL``,
    or, with ``RECO_REDIS_CLUSTER``, Feast's ``redis_cluster`` store seeded by it."""
    path = settings.feature_repo / "feature_store.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; is RECO_FEATURE_REPO set correctly?")
    values = {**os.environ, **settings.feast_env(), **(env or {})}
    text = _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), path.read_text())
    raw: dict[str, Any] = yaml.safe_load(text)
    raw["project"] = settings.feast_project
    online = raw.get("online_store")
    if isinstance(online, dict) and online.get("type") == "redis":
        if settings.redis.cluster and online.get("redis_type", "redis") != "redis_sentinel":
            online["redis_type"] = "redis_cluster"
            online["connection_string"] = settings.feast_redis_cluster_connection
        elif online.get("redis_type", "redis") == "redis":  # a cluster/sentinel names its own
            online["connection_string"] = settings.feast_redis_connection
    return raw


def repo_config(settings: Settings) -> RepoConfig:
    """The repository's configuration for ``settings`` (see :func:`config_dict`)."""
    config = RepoConfig(**config_dict(settings))
    config.repo_path = settings.feature_repo.resolve()
    return config


def feast_cli_env(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for Feast's own CLI run in the repository with these settings: a resolved
    ``feature_store.yaml`` (written under the repo's ``data/``) named by Feast's
    ``FEAST_FS_YAML_FILE_PATH``, plus the ``${VAR}``s the ``deploy/feast`` templates use."""
    path = settings.data_dir / f"feature_store.{settings.feast_project}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, yaml.safe_dump(config_dict(settings, env), sort_keys=False))
    return {
        **settings.feast_env(),
        **(env or {}),
        FEAST_FS_YAML_FILE_PATH_ENV_NAME: str(path.resolve()),
    }


def open_store(settings: Settings) -> FeatureStore:
    """A FeatureStore for the configured repository, project and Redis."""
    return FeatureStore(
        repo_path=str(settings.feature_repo.resolve()), config=repo_config(settings)
    )


def redis_client(settings: Settings, timeout: float = 30.0) -> RedisClient:
    """A client for the job side's own keys (pointer, lock, catalog version): one Redis, or
    a Redis Cluster with ``RECO_REDIS_CLUSTER`` (:func:`~.redisclient.make_redis`)."""
    return make_redis(settings.redis, timeout=timeout, connect_timeout=5.0)


def teardown_project(settings: Settings) -> None:
    """Remove exactly this project's data from the online store: Feast's keys (``feast
    teardown``) and the platform's own keys (:func:`delete_project_keys`). For throwaway
    projects (tests, benchmarks); nothing of another project is touched."""
    open_store(settings).teardown()
    delete_project_keys(settings)


def delete_project_keys(settings: Settings) -> None:
    """Delete the platform's own ``reco:{<project>}:*`` keys of this project (list pointers
    and history, materialization record, serving configuration, monitor)."""
    client = redis_client(settings)
    try:
        keys = list(client.scan_iter(match=project_pattern(settings.feast_project), count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


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


def materialized_key(project: str) -> str:
    """Hash: feature view -> end of its last load into Redis (see :func:`materialize`)."""
    return project_key(project, "materialized")


def materialize(
    store: FeatureStore, client: RedisClient, end: datetime, earliest: datetime
) -> dict[str, str]:
    """Load offline features into Redis up to ``end``.

    Views never materialized before get the full range from ``earliest`` (Feast's incremental
    mode would start at ``now - ttl`` and silently skip older data); so do views whose online
    rows are gone: every load is recorded in Redis itself (:func:`materialized_key`), and a view
    the registry calls materialized but whose record is missing lost its data (a Redis restart
    without persistence, a flush) and is backfilled. The others continue incrementally. The
    list views are written directly by the nightly job instead.
    """
    key = materialized_key(store.project)
    try:
        recorded = {k.decode() for k in client.hkeys(key)}  # type: ignore[union-attr]
    except RedisError as exc:
        raise FeatureStoreUnavailable(f"online store did not answer: {exc}") from exc
    done: dict[str, str] = {}
    first: list[str] = []
    incremental: list[str] = []
    for view in store.list_feature_views():
        if view.name.startswith(LIST_VIEW_PREFIX):
            continue
        if view.most_recent_end_time is None:
            first.append(view.name)
        elif view.name not in recorded:
            log.warning("online rows of %s are missing: backfilling it in full", view.name)
            first.append(view.name)
        else:
            incremental.append(view.name)
    # One view at a time, each recorded as soon as it is loaded: a night killed in the middle of
    # a backfill resumes with the views not yet loaded, and continues the others incrementally.
    for name in first:
        store.materialize(start_date=earliest, end_date=end, feature_views=[name])
        client.hset(key, name, end.isoformat())
        done[name] = "full"
    for name in incremental:
        store.materialize_incremental(end_date=end, feature_views=[name])
        client.hset(key, name, end.isoformat())
        done[name] = "incremental"
    return done


def historical_user_features(store: FeatureStore, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time correct user features for ``entity_df`` (user_id, event_timestamp)."""
    service = store.get_feature_service(TRAINING_USER_SERVICE)
    return store.get_historical_features(entity_df=entity_df, features=service).to_df()


def write_lists_feast(store: FeatureStore, view: str, lists: pd.DataFrame) -> None:
    """Write lists through Feast's own write path, without its timestamp read (only the
    lock holder writes the unpublished slot). For online stores the fast writer
    (:mod:`recommender.featurestore.writer`) does not speak, such as Redis Cluster. Lists
    without source columns are one model's (no masks, source "als")."""
    defaults = {"rec_sources": [[] for _ in range(len(lists))], "rec_source_names": "als"}
    lists = lists.assign(**{k: v for k, v in defaults.items() if k not in lists})
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


def online_row(store: FeatureStore, service: str, user_id: str) -> dict[str, Any]:
    try:
        response = store.get_online_features(
            features=_feature_service(store, service),
            entity_rows=[{"user_id": user_id}],
        ).to_dict(include_event_timestamps=True)
    except (RedisError, ConnectionError, TimeoutError, OSError) as exc:
        raise FeatureStoreUnavailable(f"online store did not answer: {exc}") from exc
    return {name: values[0] for name, values in response.items()}


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
        return int(client.incr(catalog_version_key(settings.feast_project)))  # type: ignore[arg-type]
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
    store.write_to_online_store(USER_PROFILE, df)
