"""Map domain exceptions to HTTP responses (the only place that knows status codes)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from recommender.errors import FeatureStoreUnavailable, UnknownItems


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownItems)
    async def _unknown_items(_: Request, exc: UnknownItems) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": str(exc), "unknown_item_ids": exc.item_ids},
        )

    @app.exception_handler(FeatureStoreUnavailable)
    async def _store_down(_: Request, exc: FeatureStoreUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503, content={"detail": str(exc)}, headers={"Retry-After": "1"}
        )
