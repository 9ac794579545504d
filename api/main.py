"""App factory: ``uvicorn --factory api.main:create_app``.

The lifespan loads the model bundle, the FAISS index and the FeatureStore once and fails fast
(the server does not start) when any of them is missing or corrupt.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis import Redis

from api.errors import install_error_handlers
from api.routes import health, recommendations
from recommender import __version__
from recommender.artifacts import load_bundle
from recommender.config import Settings, get_settings
from recommender.store import check_serving_ready, open_store

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (from the environment when omitted)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bundle = load_bundle(settings.artifacts_dir)  # raises: never start without a model
        store = open_store(settings)
        check_serving_ready(store)  # fail now, not on the first request, if not applied
        redis = Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        app.state.settings, app.state.bundle = settings, bundle
        app.state.store, app.state.redis = store, redis
        log.info(
            "serving model %s (%d users, %d items) from project %s",
            bundle.version,
            len(bundle.users),
            len(bundle.items),
            settings.feast_project,
        )
        try:
            yield
        finally:
            redis.close()
            await store.close()  # closes Feast's async online-store clients, if any

    app = FastAPI(title="Recommender API", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(recommendations.router)
    return app
