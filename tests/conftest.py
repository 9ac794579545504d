"""Shared fixtures: seeded randomness, real Redis, and a real Feast repository per test run.

Every Feast repository gets its own project name (``t<run>_<n>``), so runs never clobber
each other or a running demo; its Redis keys are removed by ``teardown_repo`` (Feast's and
the platform's own ``reco:{<project>}:*`` keys).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import redis

from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from tests.support.repo import REDIS_URL, feast_apply, make_settings, teardown_repo
from tests.support.synthetic import synthetic_tables


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:  # integration tests need the real thing, never a mock
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); start redis-server")
    return REDIS_URL


@pytest.fixture(scope="session")
def synthetic_repo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Settings]:
    """Synthetic tables written, `feast apply`-ed; torn down (Redis keys deleted) at the end."""
    settings = make_settings(tmp_path_factory.mktemp("synthetic"), redis_url)
    inter, users, items = synthetic_tables(np.random.default_rng(7))
    write_tables(build_tables(inter, users, items), settings.data_dir)
    feast_apply(settings)
    yield settings
    teardown_repo(settings)


@pytest.fixture(scope="session")
def trained_repo(synthetic_repo: Settings) -> Settings:
    """The synthetic repo after `reco train` and `reco nightly` (real Feast + Redis)."""
    from recommender.pipeline.nightly import run_nightly

    run_nightly(synthetic_repo, retrain=True)
    return synthetic_repo
