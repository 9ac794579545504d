"""App factory: ``uvicorn --factory api.main:create_app``.

The lifespan loads the model bundle, the Feast registry and the online-store layout once. A
missing or corrupt model (or an un-applied Feast repo) does not stop the process: ``/ready``
answers 503 with the reason, a log line says what is wrong, and loading is retried until it
works. Redis being down at any time degrades serving to the popularity fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from api.error_handlers import install_error_handlers
from api.middleware import Gateway
from api.ratelimit import make_limiter
from api.routes import admin, events, health, items, recommendations
from api.runtime import Runtime
from api.security import ApiKeys, TrustedProxies
from api.telemetry import Metrics
from recommender import __version__
from recommender.config import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (from the environment when omitted)."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings, metrics)
        app.state.runtime = runtime
        if await anyio.to_thread.run_sync(runtime.load) and runtime.online is not None:
            polled = await runtime.online.poll()  # experiments apply from the first request
            if polled is not None:
                await runtime.apply(polled)
        tasks = [
            asyncio.create_task(runtime.background()),
            asyncio.create_task(runtime.sink.run()),
            asyncio.create_task(runtime.exposures.run()),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.close()

    TrustedProxies(settings.trusted_proxies)  # a bad RECO_TRUSTED_PROXIES fails here, at once
    app = FastAPI(title="Recommender API", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    for module in (health, recommendations, items, events, admin):
        app.include_router(module.router)
    app.add_middleware(
        Gateway,
        keys=ApiKeys(settings.api_key_names()),
        limiter=make_limiter(
            settings, "requests", settings.rate_limit_per_second, settings.rate_limit_burst
        ),
        metrics=metrics,
        max_body=settings.max_body_bytes,
        settings=settings,
    )
    return app
