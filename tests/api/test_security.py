"""API keys, rate limits (per key, per address, on failed authentication), trusted proxies
and body-size limits, through the real app."""

from __future__ import annotations

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.main import create_app
from api.middleware import Gateway
from api.security import (
    MIN_KEY_LENGTH,
    REWRITTEN_PEER,
    ApiKeys,
    RateLimiter,
    TrustedProxies,
)
from api.telemetry import Metrics
from recommender.config import ApiKeyHolder, Settings

pytestmark = pytest.mark.integration


def test_api_keys_are_required_when_configured(trained_repo: Settings) -> None:
    settings = trained_repo.replace(api_keys=SecretStr("web:s3cret,ios:other"))
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
    settings = trained_repo.replace(
        api_keys=SecretStr("web:k1,ios:k2"), rate_limit_per_second=0.5, rate_limit_burst=3
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
    settings = trained_repo.replace(max_body_bytes=2048)
    with TestClient(create_app(settings)) as c:
        big = {"recent_item_ids": ["a1"] * 600}
        r = c.post("/recommendations", json=big)
        assert r.status_code == 413 and "2048 bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(10):
                yield b" " * 1024

        r = c.post("/events", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413


def _gateway(app: FastAPI) -> Gateway:
    layer = app.middleware_stack
    while not isinstance(layer, Gateway):
        layer = layer.app  # type: ignore[union-attr]
    return layer


def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    trained_repo: Settings,
) -> None:
    """Issue: with no API keys, random X-Forwarded-For values each got a fresh bucket."""
    limited = trained_repo.replace(rate_limit_per_second=0.01, rate_limit_burst=3)
    params = {"user_id": "a_user0"}

    def spoofed(c: TestClient, n: int) -> list[int]:
        return [
            c.get(
                "/recommendations", params=params, headers={"X-Forwarded-For": f"198.51.100.{i}"}
            ).status_code
            for i in range(n)
        ]

    # uvicorn's own proxy-header rewriting (on by default for 127.0.0.1) in front of the app:
    # the header still never picks the bucket, when no proxy is trusted
    app = ProxyHeadersMiddleware(create_app(limited), trusted_hosts="127.0.0.1")
    with TestClient(app, client=("127.0.0.1", 40000)) as c:  # type: ignore[arg-type]
        codes = spoofed(c, 12)
    assert codes[:3] == [200] * 3 and set(codes[3:]) == {429}, codes
    # an untrusted peer's header is ignored: its own address is the key
    with TestClient(create_app(limited), client=("192.0.2.7", 40000)) as c:
        codes = spoofed(c, 6)
    assert codes[:3] == [200] * 3 and set(codes[3:]) == {429}, codes

    # behind a trusted proxy: the right-most address it did not add itself is the client
    proxied = limited.replace(trusted_proxies="10.0.0.0/8, 192.0.2.1")
    with TestClient(create_app(proxied), client=("192.0.2.1", 40000)) as c:
        codes = spoofed(c, 6)
        assert codes == [200] * 6, codes  # six clients, a bucket each
        forged = {"X-Forwarded-For": "203.0.113.9, 198.51.100.0, 10.1.2.3"}  # spoof, client, proxy
        assert [
            c.get("/recommendations", params=params, headers=forged).status_code for _ in range(3)
        ] == [200, 200, 429]  # 198.51.100.0 had used one token above; the forged part is ignored


def test_limiter_memory_is_bounded(trained_repo: Settings) -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_buckets=100)
    for n in range(1000):
        limiter.take(f"client{n}")
    assert len(limiter) == 100
    assert limiter.take("client999") > 0  # the most recent buckets are the ones kept
    assert limiter.take("client0") == 0  # the oldest were dropped (a fresh bucket)

    settings = trained_repo.replace(
        rate_limit_per_second=1.0, trusted_proxies="127.0.0.1", rate_limit_max_buckets=20
    )
    app = create_app(settings)
    with TestClient(app, client=("127.0.0.1", 40000)) as c:
        for n in range(60):
            headers = {"X-Forwarded-For": f"198.51.{n // 250}.{n % 250}"}
            assert c.get("/recommendations", params={"user_id": "u"}, headers=headers).is_success
        assert len(_gateway(app).limiter) == 20


def test_failed_authentication_is_throttled_per_address(trained_repo: Settings) -> None:
    """Issue: 2,000 requests with a wrong X-API-Key all got 401, none 429."""
    settings = trained_repo.replace(api_keys=SecretStr("web:right-key"), auth_failures_per_minute=5)
    params = {"user_id": "a_user0"}
    app = create_app(settings)
    with TestClient(app, client=("192.0.2.50", 40000)) as c:
        codes = [
            c.get("/recommendations", params=params, headers={"X-API-Key": f"guess{n}"})
            for n in range(40)
        ]
        assert [r.status_code for r in codes[:5]] == [401] * 5
        assert {r.status_code for r in codes[5:]} == {429}
        assert int(codes[-1].headers["Retry-After"]) >= 1
        assert "authentication" in codes[-1].json()["detail"]
        assert 'reco_rate_limited_total{key="auth_failures"}' in c.get("/metrics").text
    # other addresses are not affected
    with TestClient(app, client=("192.0.2.51", 40000)) as other:
        right = {"X-API-Key": "right-key"}
        assert other.get("/recommendations", params=params, headers=right).status_code == 200
    assert len(_gateway(app).auth_failures) <= settings.api.rate_limit_max_buckets


def test_a_valid_key_is_never_locked_out_by_failed_attempts(trained_repo: Settings) -> None:
    """Issue 28.6: ten requests with no key or a wrong key from one address (every client
    behind a proxy that is not trusted) made the next one with a valid key get 429."""
    settings = trained_repo.replace(api_keys=SecretStr("web:right-key"))
    params = {"user_id": "a_user0"}
    right, wrong = {"X-API-Key": "right-key"}, {"X-API-Key": "wrong-key"}
    with TestClient(create_app(settings), client=("192.0.2.60", 40000)) as c:
        failed = [
            c.get("/recommendations", params=params, headers=wrong if n % 2 else {})
            for n in range(12)
        ]
        assert [r.status_code for r in failed] == [401] * 10 + [429] * 2
        # a valid key is checked first: the failure throttle does not apply to it
        assert c.get("/recommendations", params=params, headers=right).status_code == 200
        assert c.get("/admin/overview", headers=right).status_code == 403  # a client key
        # ... nor does its success lift the throttle for the bad ones
        assert c.get("/recommendations", params=params, headers=wrong).status_code == 429
        assert c.get("/recommendations", params=params).status_code == 429


def test_admin_routes_need_an_admin_key(trained_repo: Settings) -> None:
    """Issue 28.7: every valid key could read /admin/overview (the "web" client's too)."""
    keys = "web:client-key:client,ops:admin-key:admin,ios:legacy-key"
    settings = trained_repo.replace(api_keys=SecretStr(keys))
    client, admin = {"X-API-Key": "client-key"}, {"X-API-Key": "admin-key"}
    legacy = {"X-API-Key": "legacy-key"}  # name:key, no role: a client
    params = {"user_id": "a_user0"}
    app = create_app(settings)
    with TestClient(app, client=("192.0.2.70", 40000)) as c:
        assert c.get("/admin/overview").status_code == 401
        for headers in (legacy, client):
            refused = c.get("/admin/overview", headers=headers)
            assert refused.status_code == 403
            assert "admin" in refused.json()["detail"]
            assert c.get("/admin/experiments/nope", headers=headers).status_code == 403
            assert c.get("/admin/overview/", headers=headers).status_code == 403
            assert c.get("/recommendations", params=params, headers=headers).status_code == 200
        overview = c.get("/admin/overview", headers=admin)
        assert overview.status_code == 200 and overview.json()["project"] == settings.feast_project
        assert c.get("/admin/experiments/nope", headers=admin).status_code == 404
        # an admin key is a client key too (the dashboard's "try a user" sends it)
        assert c.get("/recommendations", params=params, headers=admin).status_code == 200
        # the dashboard page itself stays open; only its data calls need the key
        assert c.get("/dashboard").status_code == 200
        # refusing a role is not a failed authentication: nothing is throttled by it
        for _ in range(12):
            assert c.get("/admin/overview", headers=client).status_code == 403
        assert (
            c.get("/recommendations", params=params, headers={"X-API-Key": "x"}).status_code == 401
        )
    # the router strips a root path before matching: so must the role check
    with TestClient(app, client=("192.0.2.71", 40000), root_path="/api") as c:
        assert c.get("/api/admin/overview", headers=admin).status_code == 200
        assert c.get("/api/admin/overview", headers=client).status_code == 403


def test_api_keys_carry_a_role() -> None:
    """``name:key:role`` (client or admin); ``name:key`` and a bare key are clients."""
    raw = "web:k1:client, ops:k2:ADMIN,ios:k3,bare,colon:a:b:admin,typo:k4:admn"
    holders = Settings(api_keys=SecretStr(raw)).api.api_key_holders()
    assert {key: (h.name, h.role) for key, h in holders.items()} == {
        "k1": ("web", "client"),
        "k2": ("ops", "admin"),
        "k3": ("ios", "client"),
        "bare": ("key3", "client"),
        "a:b": ("colon", "admin"),  # a key may hold colons; the role is the last part
        "k4:admn": ("typo", "client"),  # not a role: part of the key, so "k4" never works
    }
    assert Settings(api_keys=None).api.api_key_holders() == {}
    # short keys are accepted; the app names them in a warning at start
    long_and_short = {"k" * MIN_KEY_LENGTH: ApiKeyHolder("long"), "k": ApiKeyHolder("s")}
    assert ApiKeys(long_and_short).short == ["s"]
    for bad, reason in [
        ("web:", "empty key"),
        ("web::admin", "empty key"),
        ("a:s3cr3t,b:s3cr3t:admin", "same key as 'a'"),
    ]:
        with pytest.raises(ValueError, match=reason) as err:
            create_app(Settings(api_keys=SecretStr(bad)))  # refused at once, as a bad proxy is
        assert "s3cr3t" not in str(err.value)  # the message never echoes a key


def test_the_client_address_behind_proxies() -> None:
    none, some = TrustedProxies(""), TrustedProxies("10.0.0.0/8, 192.0.2.1")
    assert none.client("192.0.2.9", ["198.51.100.1"]) == "192.0.2.9"  # header ignored
    assert none.client("198.51.100.1", ["198.51.100.1"]) == REWRITTEN_PEER  # uvicorn rewrote
    assert none.client("foo:bar", ["foo:bar"]) == REWRITTEN_PEER  # read as uvicorn reads it
    assert none.client(None, []) == "unknown"
    # an untrusted peer cannot reach the header walk by naming itself in the header
    assert some.client("192.0.2.7", ["192.0.2.7, 203.0.113.1"]) == "192.0.2.7"
    # a trusted peer: the right-most hop no trusted proxy added (ports and brackets removed)
    assert some.client("192.0.2.1", ["203.0.113.9, 198.51.100.4:5000, 10.1.1.1"]) == (
        "198.51.100.4"
    )
    assert some.client("10.0.0.2", ["[2001:db8::1]:443"]) == "2001:db8::1"
    assert some.client("10.0.0.2", ["10.0.0.9", "10.0.0.8"]) == "10.0.0.9"  # all trusted
    assert some.client("10.0.0.2", []) == "10.0.0.2"
    with pytest.raises(ValueError, match="10.0.0.999"):
        TrustedProxies("10.0.0.999")


def test_the_gateway_takes_its_settings_when_given() -> None:
    limiter = RateLimiter(1.0)
    settings = Settings(
        trusted_proxies="10.0.0.0/8", rate_limit_max_buckets=7, auth_failures_per_minute=3
    )
    gateway = Gateway(FastAPI(), ApiKeys({}), limiter, Metrics(), 4096, settings=settings)
    assert "10.1.2.3" in gateway.trusted and limiter.max_buckets == 7
    assert gateway.auth_failures.burst == 3 and gateway.auth_failures.max_buckets == 7
    with pytest.raises(ValueError, match="not an IP"):
        Gateway(
            FastAPI(),
            ApiKeys({}),
            limiter,
            Metrics(),
            4096,
            settings=Settings(trusted_proxies="10.0.0.999"),
        )


def test_a_bad_trusted_proxy_stops_the_start(trained_repo: Settings) -> None:
    """Not served with a setting the gateway cannot read (uvicorn exits on a failed start)."""
    bad = trained_repo.replace(trusted_proxies="10.0.0.999")
    try:
        app = create_app(bad)
    except ValueError as exc:  # the gateway given the settings: refused at once
        assert "'10.0.0.999' is not an IP address" in str(exc)
        return
    sent: list[dict[str, object]] = []

    async def start() -> None:
        inbox = [{"type": "lifespan.startup"}]

        async def receive() -> dict[str, object]:
            if inbox:
                return inbox.pop()
            await anyio.sleep_forever()  # a server asks for shutdown only after a good start
            raise AssertionError

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        with anyio.fail_after(60):
            await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    anyio.run(start)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "'10.0.0.999' is not an IP address" in str(sent[0]["message"])
