"""CPU per request of the app itself, in process (no HTTP server, no wrk): the ASGI app is
called directly, so only our code, FastAPI/Starlette and the Redis client are measured.

Compares, in one process and one run: the constant route, the warm ``GET /recommendations``
through its compiled form, the same through FastAPI's own handling (the gateway's ``lean``
switched off), and optionally with the user cache and the cold ``POST`` (a new user's
three items: fold-in, or retrieve and rank with a two-stage model). Used to decide each step
of the lean path (issue 16); the HTTP numbers are bench.api_bench's.

Usage: ``flock /tmp/reco-bench.lock .venv/bin/python -m bench.route_cpu --work DIR
[--requests 2000] [--user-cache 100000] [--cold]`` where DIR holds a setup of bench.api_bench
(``--work``) or of the tests (a ``settings.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from api.main import create_app
from api.middleware import Gateway
from bench.app import CONSTANT
from recommender.config import Settings
from recommender.training.artifacts import load_bundle


async def _call(app: Any, path: str, query: bytes, body: bytes | None = None) -> int:
    headers = [(b"host", b"bench")]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET" if body is None else "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 80),
    }
    status = [0]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


async def _measure(
    settings: Settings, users: list[str], items: list[str], n: int, cold: bool
) -> dict[str, dict[str, float]]:
    app = create_app(settings)

    @app.get("/constant")
    async def constant() -> dict[str, Any]:
        return CONSTANT

    def warm(i: int) -> tuple[bytes, bytes | None]:
        return f"user_id={users[i % len(users)]}&k=10".encode(), None

    def new_user(i: int) -> tuple[bytes, bytes | None]:
        recent = [items[(i * m) % len(items)] for m in (1, 7, 13)]
        body = {"k": 10, "user_id": f"new{i}", "recent_item_ids": recent}
        return b"", json.dumps(body).encode()

    out: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app):
        assert await _call(app, "/recommendations", f"user_id={users[0]}".encode()) == 200
        gateway = app.middleware_stack
        while not isinstance(gateway, Gateway):
            gateway = gateway.app  # type: ignore[union-attr]
        runs = [("constant", "/constant", True, warm), ("warm", "/recommendations", True, warm)]
        runs += [("warm_fastapi", "/recommendations", False, warm)]
        if cold:
            runs += [("cold", "/recommendations", True, new_user)]
        for _round in range(2):
            for name, path, lean, request in runs:
                gateway.lean = lean
                for i in range(n // 5):  # warm-up (and, with a cache, filling it)
                    assert await _call(app, path, *request(i)) == 200
                t0, c0 = time.perf_counter(), time.process_time()
                for i in range(n):
                    await _call(app, path, *request(i))
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                got = {"wall_us": wall / n * 1e6, "cpu_us": cpu / n * 1e6}
                best = out.get(name)
                if best is None or got["cpu_us"] < best["cpu_us"]:
                    out[name] = got  # the better of two rounds: the machine is shared
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--user-cache", type=int, default=0)
    parser.add_argument("--cold", action="store_true", help="also POST a new user's items")
    args = parser.parse_args()
    settings = Settings.model_validate_json((Path(args.work) / "settings.json").read_text())
    settings = settings.replace(log_level="WARNING", user_cache_entries=args.user_cache)
    bundle = load_bundle(settings.artifacts_dir)
    users = bundle.users.ids[:500].tolist()
    items = bundle.items.ids[:3000].tolist()
    result = asyncio.run(_measure(settings, users, items, args.requests, args.cold))
    print(json.dumps({"user_cache": args.user_cache, **result}, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
