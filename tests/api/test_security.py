"""API keys, per-key rate limits and body-size limits, through the real app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from api.security import RateLimiter
from recommender.config import Settings

pytestmark = pytest.mark.integration


def test_api_keys_are_required_when_configured(trained_repo: Settings) -> None:
    settings = trained_repo.model_copy(update={"api_keys": SecretStr("web:s3cret,ios:other")})
    with TestClient(create_app(settings)) as c:
        r = c.get("/recommendations", params={"user_id": "a_user0"})
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
        wrong = c.get("/recommendations", params={"user_id": "a_user0"}, headers={"X-API-Key": "x"})
        assert wrong.status_code == 401
        ok = c.get(
            "/recommendations", params={"user_id": "a_user0"}, headers={"X-API-Key": "s3cret"}
        )
        assert ok.status_code == 200
        # probes and metrics stay open for the orchestrator and Prometheus
        assert c.get("/health").status_code == 200 and c.get("/metrics").status_code == 200


def test_rate_limit_per_key_answers_429_with_retry_after(trained_repo: Settings) -> None:
    settings = trained_repo.model_copy(
        update={
            "api_keys": SecretStr("web:k1,ios:k2"),
            "rate_limit_per_second": 0.5,
            "rate_limit_burst": 3,
        }
    )
    params = {"user_id": "a_user0"}
    with TestClient(create_app(settings)) as c:
        codes = [
            c.get("/recommendations", params=params, headers={"X-API-Key": "k1"}) for _ in range(4)
        ]
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        assert int(codes[-1].headers["Retry-After"]) >= 1
        # another key has its own bucket
        assert (
            c.get("/recommendations", params=params, headers={"X-API-Key": "k2"}).status_code == 200
        )
        assert 'reco_rate_limited_total{key="web"} 1.0' in c.get("/metrics").text


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert limiter.take("k") == 0 and limiter.take("k") == 0
    assert limiter.take("k") == pytest.approx(0.5)
    now[0] = 0.5
    assert limiter.take("k") == 0


def test_bodies_over_the_limit_are_refused(trained_repo: Settings) -> None:
    settings = trained_repo.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(settings)) as c:
        big = {"recent_item_ids": ["a1"] * 600}
        r = c.post("/recommendations", json=big)
        assert r.status_code == 413 and "2048 bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(10):
                yield b" " * 1024

        r = c.post("/events", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
