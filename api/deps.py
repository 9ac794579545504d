"""Dependencies as Annotated aliases; routes declare only what they use.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
which cost the warm path two thread hand-offs per request (py-spy, docs/benchmarks.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from api.runtime import Runtime
from api.schemas import MAX_LIST, FeatureValue, Filters, Id
from recommender.data.vocab import Vocab
from recommender.serving.rules import Catalog, Rules, rules_from


async def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def _filters(
    exclude_item_ids: Annotated[
        list[Id] | None, Query(max_length=MAX_LIST, description="never return these items")
    ] = None,
    include: Annotated[
        list[FeatureValue] | None,
        Query(max_length=50, description="feature:value; an item must match one value per feature"),
    ] = None,
    exclude: Annotated[
        list[FeatureValue] | None, Query(max_length=50, description="feature:value to leave out")
    ] = None,
    cap: Annotated[
        str | None,
        Query(
            max_length=100, pattern=r"^[^:]+:[1-9][0-9]{0,2}$", description="feature:N per value"
        ),
    ] = None,
    explain: Annotated[bool, Query(description="add 'because you liked' reasons")] = False,
) -> Filters:
    return Filters(
        exclude_item_ids=exclude_item_ids or [],
        include=include or [],
        exclude=exclude or [],
        cap=cap,
        explain=explain,
    )


def rules_for(filters: Filters, items: Vocab, catalog: Catalog) -> Rules:
    """The rule engine's view of a request's filters (shared by every route)."""
    return rules_from(
        items, catalog, filters.exclude_item_ids, filters.include, filters.exclude, filters.cap
    )


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
FiltersDep = Annotated[Filters, Depends(_filters)]
