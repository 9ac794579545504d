"""The Redis eviction check, against a redis-server of the test's own (its config changed)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from recommender.featurestore.redisclient import warn_on_eviction
from tests.support.redis_server import OwnRedis

pytestmark = pytest.mark.skipif(
    not shutil.which("redis-server"), reason="redis-server is not installed"
)


@pytest.fixture
def own(tmp_path: Path) -> Iterator[redis.Redis]:
    server = OwnRedis(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()
    server.stop()


def test_an_eviction_policy_that_can_drop_platform_keys_is_warned_about(
    own: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert warn_on_eviction(own, "nightly") is None  # no maxmemory: nothing is ever evicted
    own.config_set("maxmemory", "100mb")
    own.config_set("maxmemory-policy", "allkeys-lru")
    warning = warn_on_eviction(own, "nightly")
    assert warning is not None and "allkeys-lru" in warning and "noeviction" in warning
    assert any("nightly" in r.message and "allkeys-lru" in r.message for r in caplog.records)
    own.config_set("maxmemory-policy", "volatile-lru")
    assert "run lock" in (warn_on_eviction(own, "api") or "")
    own.config_set("maxmemory-policy", "noeviction")
    assert warn_on_eviction(own, "api") is None
