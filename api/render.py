"""Responses as JSON bytes (orjson), shaped exactly like the models in ``api/schemas.py``;
building pydantic models per item costs more than the warm path's whole ranking."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import orjson
from fastapi.responses import Response

from recommender.serving.paths import Ranked


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def items(ranked: Ranked, titles: Mapping[str, str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    because, provenance, moved_by = ranked.because, ranked.provenance, ranked.moved_by
    for pos, (item_id, score) in enumerate(zip(ranked.item_ids, ranked.scores, strict=True)):
        entry: dict[str, object] = {
            "item_id": item_id,
            "title": titles.get(item_id, item_id),
            "score": score if math.isfinite(score) else 0.0,
        }
        if because is not None:
            source = because[pos]
            entry["because_item_id"] = source
            entry["reason"] = (
                f"because you liked {titles.get(source, source)}" if source is not None else None
            )
        if provenance is not None:
            entry["retrievers"] = provenance[pos]
        if moved_by is not None:
            entry["moved_up_by"] = moved_by[pos]
        out.append(entry)
    return out


def recommendation(
    ranked: Ranked,
    user_id: str | None,
    titles: Mapping[str, str],
    ages: Mapping[str, float],
    lineage: Mapping[str, str | None] | None = None,
) -> Response:
    body = {
        "user_id": user_id,
        "source": ranked.source,
        "strategy": ranked.strategy,
        "reason": ranked.reason,
        "model_version": ranked.model_version,
        "run_id": ranked.run_id,
        "generated_at": _iso(ranked.generated_at),
        "feature_age_seconds": dict(ages),
        "items": items(ranked, titles),
        "used": ranked.used,
        **(lineage or {}),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def similar(ranked: Ranked, item_id: str, titles: Mapping[str, str]) -> Response:
    body = {
        "item_id": item_id,
        "title": titles.get(item_id, item_id),
        "source": ranked.source,
        "strategy": ranked.strategy,
        "model_version": ranked.model_version,
        "items": items(ranked, titles),
    }
    return Response(orjson.dumps(body), media_type="application/json")
