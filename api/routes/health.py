"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import RuntimeDep
from api.schemas import Health, Ready
from api.telemetry import exposition

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(rt: RuntimeDep, response: Response) -> Ready:
    """Ready when a model is loaded. Redis being down does not make the app unready: it still
    serves (popularity fallback), and taking every replica out of a load balancer would turn
    a degraded service into an outage; ``redis`` and ``detail`` report it. Nor does a live
    model that cannot be loaded while an older version serves (``detail`` names both)."""
    redis_ok = await rt.online.ping() if rt.online is not None else False
    problems = [
        rt.degraded,
        None if redis_ok else "degraded: redis does not answer",
        f"warning: {rt.redis_warning}" if rt.redis_warning else None,
    ]
    detail = rt.not_ready or "; ".join(p for p in problems if p) or None
    ok = rt.not_ready is None
    if not ok:
        response.status_code = 503
    version = rt.bundle.version if rt.bundle is not None else None
    live = rt.live
    return Ready(
        ready=ok,
        model_version=version,
        redis=redis_ok,
        detail=detail,
        lists_run_id=live.run_id if live else None,
        lists_slot=live.slot if live else None,
    )


@router.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    """Prometheus text format (every worker's values when ``reco serve`` runs several)."""
    body, content_type = exposition(rt.metrics, rt.settings.api.workers)
    return Response(body, media_type=content_type)
