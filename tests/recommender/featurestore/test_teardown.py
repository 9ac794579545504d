"""A throwaway project's cleanup deletes its own platform keys and nothing else, not even a
project whose name starts the same."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from recommender.featurestore.keys import project_key
from recommender.featurestore.repo import delete_project_keys
from tests.support.repo import REDIS_URL, make_settings

pytestmark = pytest.mark.integration


def test_delete_project_keys_removes_exactly_this_projects_keys(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, REDIS_URL)
    mine = [project_key(settings.feast_project, name) for name in ("lists:live", "monitor")]
    other = project_key(f"{settings.feast_project}0", "lists:live")  # the name plus a digit
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in (*mine, other):
            client.set(key, "x")
        delete_project_keys(settings)
        assert client.exists(*mine) == 0
        assert client.exists(other) == 1
    finally:
        client.delete(*mine, other)
        client.close()
