"""Schemathesis against the app's own OpenAPI schema, every check: no server errors, responses
that match the documented schemas, status codes that are documented. A modest example count
here (RECO_FUZZ_EXAMPLES, default 25 per operation); bench/fuzz.sh runs a larger one."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig

from api.main import create_app
from recommender.config import Settings

pytestmark = pytest.mark.integration
# 422 is a documented answer to well-formed requests naming ids or features the catalog does
# not have (schema-valid, yet unknown); every other check keeps its defaults.
CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
"""
)
EXAMPLES = int(os.environ.get("RECO_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def running_app(
    trained_repo: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    # a separate event log, so fuzzed events never reach the other tests' training data
    events = tmp_path_factory.mktemp("fuzz-events")
    app = create_app(trained_repo.replace(events_dir=events))
    with TestClient(app):  # runs the lifespan: model, Feast, Redis
        yield app


def operations(app: FastAPI) -> list:  # type: ignore[type-arg]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_to_its_schema(running_app: FastAPI) -> None:
    ops = operations(running_app)
    assert {op.path for op in ops} >= {"/recommendations", "/events", "/items/{item_id}/similar"}
    for op in ops:

        @given(case=op.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate()

        check()
