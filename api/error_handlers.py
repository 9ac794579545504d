"""Map domain exceptions to HTTP responses (the only place that knows status codes)."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

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
# FastAPI's answer when decoding a JSON body raises anything but a JSONDecodeError (bytes that
# are not UTF-8, nesting deeper than the recursion limit, an integer of over 4300 digits).
BODY_PARSE_FAILED = "There was an error parsing the body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler fails on a NaN or Infinity it echoes back (strict JSON): 500
        content = {"detail": _finite(jsonable_encoder(exc.errors()))}
        return JSONResponse(status_code=422, content=content)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == BODY_PARSE_FAILED and exc.__cause__:
            return JSONResponse(status_code=422, content=_unparsable(exc.__cause__))
        return await http_exception_handler(request, exc)

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


def _finite(value: object) -> object:
    """``value`` with every non-finite float as the JSON-ish text a client sent (``NaN``,
    ``Infinity``, ``-Infinity``), so the answer is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _unparsable(cause: BaseException) -> dict[str, object]:
    """A body FastAPI could not decode, as a validation error of the whole body."""
    if isinstance(cause, UnicodeDecodeError):
        msg = f"the body is not valid UTF-8 JSON ({cause.reason} at byte {cause.start})"
    elif isinstance(cause, RecursionError):
        msg = "the body's JSON is nested too deeply"
    elif isinstance(cause, ValueError):  # e.g. "Exceeds the limit (4300 digits) for integer ..."
        msg = f"the body is not valid JSON: {str(cause).split(';')[0]}"
    else:
        msg = "the body could not be read as JSON"
    return {"detail": [{"loc": ["body"], "msg": msg, "type": "json_invalid"}]}
