"""The warm path's lean HMGET client against a redis-server of the test's own: concurrent
requests on one connection each get their own reply, a database and a password are set up,
and a timeout fails the waiting requests and the next one reconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from api.leanredis import LeanReader, command
from tests.support.redis_server import OwnRedis

pytestmark = pytest.mark.integration
FIELDS = [b"f1", b"f2", b"missing"]


@pytest.fixture
def own(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_command_is_resp() -> None:
    assert command(b"GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


def test_concurrent_requests_share_one_connection_in_order(own: OwnRedis) -> None:
    client = redis.Redis(port=own.port, db=2)
    for n in range(200):
        client.hset(f"user:{n}", mapping={"f1": f"a{n}", "f2": f"b{n}"})
    reader = LeanReader(f"redis://127.0.0.1:{own.port}/2", FIELDS, timeout=2.0)
    before = client.info("stats")["total_connections_received"]

    async def run() -> list[list[bytes | None]]:
        try:
            return await asyncio.gather(*(reader.hmget(f"user:{n}".encode()) for n in range(200)))
        finally:
            reader.close()

    got = asyncio.run(run())
    assert got == [[f"a{n}".encode(), f"b{n}".encode(), None] for n in range(200)]
    after = client.info("stats")["total_connections_received"]
    assert after - before == 1  # one connection carried them all


def test_password_and_errors(own: OwnRedis) -> None:
    admin = redis.Redis(port=own.port)
    admin.config_set("requirepass", "s3cret")
    try:
        authed = redis.Redis(port=own.port, password="s3cret")
        authed.hset("k", "f1", "v")

        async def read(password: str | None) -> list[bytes | None]:
            reader = LeanReader(f"redis://127.0.0.1:{own.port}/0", FIELDS, 2.0, password)
            try:
                return await reader.hmget(b"k")
            finally:
                reader.close()

        assert asyncio.run(read("s3cret")) == [b"v", None, None]
        with pytest.raises(ConnectionError, match="NOAUTH|WRONGPASS|Authentication"):
            asyncio.run(read(None))
    finally:
        redis.Redis(port=own.port, password="s3cret").config_set("requirepass", "")


def test_a_timeout_fails_the_waiters_and_the_next_request_reconnects(own: OwnRedis) -> None:
    redis.Redis(port=own.port).hset("k", "f1", "v")
    reader = LeanReader(f"redis://127.0.0.1:{own.port}/0", FIELDS, timeout=0.2)

    async def run() -> tuple[list[object], list[bytes | None]]:
        assert await reader.hmget(b"k") == [b"v", None, None]
        pause = asyncio.get_running_loop().run_in_executor(None, own.pause, 0.6)
        await asyncio.sleep(0.1)
        stalled = await asyncio.gather(
            *(reader.hmget(b"k") for _ in range(3)), return_exceptions=True
        )
        await pause
        after = await reader.hmget(b"k")
        reader.close()
        return stalled, after

    stalled, after = asyncio.run(run())
    assert all(isinstance(e, TimeoutError) for e in stalled), stalled
    assert after == [b"v", None, None]
