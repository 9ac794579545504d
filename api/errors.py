"""Map domain exceptions to HTTP responses (the only place that knows status codes)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from recommender.errors import (
    EventLogUnavailable,
    FeatureStoreUnavailable,
    InvalidRequest,
    ModelNotLoaded,
    NotFound,
    RecoError,
    UnknownItems,
)

STATUS: dict[type[RecoError], int] = {
    InvalidRequest: 422,
    NotFound: 404,
    ModelNotLoaded: 503,
    FeatureStoreUnavailable: 503,
    EventLogUnavailable: 503,
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownItems)
    async def _unknown_items(_: Request, exc: UnknownItems) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={**_validation_body(exc), "unknown_item_ids": exc.item_ids},
        )

    @app.exception_handler(RecoError)
    async def _domain(_: Request, exc: RecoError) -> JSONResponse:
        status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 500)
        if status == 422:
            return JSONResponse(status_code=422, content=_validation_body(exc))
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse(status_code=status, content={"detail": str(exc)}, headers=headers)


def _validation_body(exc: RecoError) -> dict[str, object]:
    """The same shape as FastAPI's own 422s, so clients parse one error format."""
    return {"detail": [{"loc": ["request"], "msg": str(exc), "type": "value_error"}]}
