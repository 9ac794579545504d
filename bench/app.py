"""The production app plus a constant-JSON route, so the benchmark compares like with like
(same app, middleware, server and process): ``uvicorn --factory bench.app:create_bench_app``."""

from __future__ import annotations

from fastapi import FastAPI

from api.main import create_app

CONSTANT = {"user_id": "196", "source": "constant", "items": [{"item_id": "1", "score": 1.0}]}


def create_bench_app() -> FastAPI:
    app = create_app()

    @app.get("/constant")
    async def constant() -> dict:
        """Constant JSON: the floor of what this app and server can do per request."""
        return CONSTANT

    return app
