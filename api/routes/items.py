"""GET /items/{item_id}/similar and GET /items/similar?item_id=: nearest items in the model's
vector space, same filters. Every id that can be ingested can be asked about: the path form
takes ids with ``/`` (sent as is or as ``%2F``), the query form any id at all (a client
resolves ``.`` and ``..`` path segments before sending them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api import render
from api.deps import FiltersDep, RuntimeDep, rules_for
from api.runtime import Runtime
from api.schemas import COMMON_ERRORS, Filters, Id, SimilarResponse
from recommender.errors import NotFound
from recommender.serving import paths

router = APIRouter(tags=["items"], responses=COMMON_ERRORS)
DOC: dict[int | str, dict[str, Any]] = {
    200: {"model": SimilarResponse},
    404: {"description": "unknown item"},
}
K = Annotated[int, Query(ge=1, le=100)]


def _similar(rt: Runtime, filters: Filters, item_id: str, k: int) -> Response:
    bundle, catalog, _ = rt.require()
    row = bundle.items.row(item_id)
    if row is None:
        raise NotFound(f"item {item_id!r} is not in the model's catalog")
    rules = rules_for(filters, bundle.items, catalog)
    ranked = paths.similar_items(bundle, row, k, rules, catalog)
    if filters.explain:
        ranked.because = [item_id] * len(ranked.item_ids)
    rt.metrics.served.labels(ranked.source, ranked.strategy).inc()
    return render.similar(ranked, item_id, rt.titles)


@router.get("/items/similar", response_class=Response, responses=DOC)
async def similar_items_by_query(
    rt: RuntimeDep,
    filters: FiltersDep,
    item_id: Annotated[Id, Query(description="An item of the model's catalog (any id).")],
    k: K = 10,
) -> Response:
    """Items most similar to ``item_id``, as ``/items/{item_id}/similar``, for any id."""
    return _similar(rt, filters, item_id, k)


@router.get("/items/{item_id:path}/similar", response_class=Response, responses=DOC)
async def similar_items(
    rt: RuntimeDep,
    filters: FiltersDep,
    item_id: Annotated[
        Id, Path(description="An item of the model's catalog; a `/` in it may stay as is.")
    ],
    k: K = 10,
) -> Response:
    """Items most similar to ``item_id`` (cosine of the model's item vectors, FAISS
    candidates), filtered like recommendations."""
    return _similar(rt, filters, item_id, k)
