"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response
from redis.exceptions import RedisError

from api.deps import BundleDep, RedisDep
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/ready", response_model=Ready)
def ready(bundle: BundleDep, redis: RedisDep, response: Response) -> Ready:
    """Ready to serve: model loaded and the online store (Redis) reachable."""
    try:
        redis_ok = bool(redis.ping())
        detail = None
    except RedisError as exc:
        redis_ok, detail = False, f"redis: {exc}"
    if not redis_ok:
        response.status_code = 503
    return Ready(ready=redis_ok, model_version=bundle.version, redis=redis_ok, detail=detail)
