"""GET /items/{item_id}/similar: nearest items in the model's vector space, same filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api import render
from api.deps import FiltersDep, RuntimeDep, rules_for
from api.schemas import COMMON_ERRORS, Id, SimilarResponse
from recommender.errors import NotFound
from recommender.serving import paths

router = APIRouter(tags=["items"], responses=COMMON_ERRORS)


@router.get(
    "/items/{item_id}/similar",
    response_class=Response,
    responses={200: {"model": SimilarResponse}, 404: {"description": "unknown item"}},
)
async def similar_items(
    rt: RuntimeDep,
    filters: FiltersDep,
    item_id: Annotated[Id, Path(description="An item of the model's catalog.")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    """Items most similar to ``item_id`` (cosine of the model's item vectors, FAISS
    candidates), filtered like recommendations."""
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
