"""App factory: ``uvicorn --factory api.main:create_app``.

The lifespan loads the model bundle, the Feast registry and the online-store layout once. A
missing or corrupt model (or an un-applied Feast repo) does not stop the process: ``/ready``
answers 503 with the reason, a log line says what is wrong, and loading is retried until it
works. Redis being down at any time degrades serving to the popularity fallback.
"""

from __future__ import annotations

import asyncio
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
from api.security import MIN_KEY_LENGTH, ApiKeys, TrustedProxies
from api.telemetry import Metrics
from recommender import __version__
from recommender.config import Settings, get_settings

log = logging.getLogger(__name__)


# how long shutdown waits for the background tasks to end; a task still running then is
# logged and left behind, and the runtime is closed anyway (exposures flushed, logs and
# connections closed)
SHUTDOWN_TASK_SECONDS = 5.0


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the background tasks and wait for them, cancelling again every 0.1 s while one
    still runs: a cancellation can be lost (``asyncio.wait_for`` before Python 3.12 swallows
    one that arrives as its inner await completes, gh-86296), and a polling loop that lost it
    would keep the process from ever shutting down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHUTDOWN_TASK_SECONDS
    pending = set(tasks)
    while pending and (left := deadline - loop.time()) > 0:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.1, left))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())
    for task in pending:
        log.warning(
            "background task %s did not stop within %g s of shutdown; closing anyway",
            task.get_name(),
            SHUTDOWN_TASK_SECONDS,
        )


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
            asyncio.create_task(runtime.background(), name="catalog-poll"),
            asyncio.create_task(runtime.sink.run(), name="event-sink"),
            asyncio.create_task(runtime.exposures.run(), name="exposure-flush"),
        ]
        try:
            yield
        finally:
            await _stop(tasks)
            await runtime.close()

    TrustedProxies(settings.api.trusted_proxies)  # a bad RECO_TRUSTED_PROXIES fails here, at once
    keys = ApiKeys(settings.api.api_key_holders())  # so does a bad RECO_API_KEYS
    if keys.short:
        log.warning(
            "API keys of %s are shorter than %d characters: easy to guess (failed attempts are "
            "throttled per address, but never the requests that bring a valid key)",
            ", ".join(keys.short),
            MIN_KEY_LENGTH,
        )
    app = FastAPI(title="Recommender API", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    for module in (health, recommendations, items, events, admin):
        app.include_router(module.router)
    app.add_middleware(
        Gateway,
        keys=keys,
        limiter=make_limiter(
            settings, "requests", settings.api.rate_limit_per_second, settings.api.rate_limit_burst
        ),
        metrics=metrics,
        max_body=settings.api.max_body_bytes,
        settings=settings,
    )
    return app
