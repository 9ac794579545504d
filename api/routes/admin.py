"""The operator's view: ``GET /dashboard`` (one static page, no front-end build) and the JSON
it reads: ``/admin/overview`` (live model and lists, versions, nightly runs, serving
configuration, drift) and ``/admin/experiments/{name}`` (the report, computed from the logs).
When API keys are configured, the /admin routes need a key with the admin role (a client
key gets 403, checked in api/middleware.py); the page itself is open."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from api.deps import RuntimeDep
from api.runtime import Runtime
from api.schemas import COMMON_ERRORS, ErrorDetail
from recommender.contract.runs import read_manifests
from recommender.lifecycle.experiment_ops import list_experiments, report
from recommender.lifecycle.experiments import EXPERIMENT_NAME
from recommender.training import registry

router = APIRouter(tags=["operations"], responses=COMMON_ERRORS)
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorDetail, "description": "the API key has the client role, not admin"}
}
PAGE = Path(__file__).resolve().parent.parent / "static" / "dashboard.html"
RUN_KEYS = (
    "run_id",
    "status",
    "started_at",
    "finished_at",
    "model_version",
    "model_source",
    "users",
    "durations_s",
    "error",
    "promotion",
    "monitor",
)


@router.get("/dashboard", include_in_schema=False)
async def dashboard() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")


def _overview(rt: Runtime) -> dict[str, Any]:

    s = rt.settings
    versions = [v.summary() for v in registry.list_versions(s.artifacts_dir)[:20]]
    runs = sorted(read_manifests(s), key=lambda m: m.started_at, reverse=True)[:10]
    config = rt.config
    return {
        "project": s.feast_project,
        "serving_model": rt.bundle.version if rt.bundle else None,
        "not_ready": rt.not_ready,
        "live_lists": vars(rt.live) if rt.live else None,
        "loaded_models": sorted(rt.models),
        "versions": versions,
        "journal": registry.read_journal(s.artifacts_dir)[-20:][::-1],
        "runs": [m.model_dump(include=set(RUN_KEYS)) for m in runs],
        "experiment": config.experiment.to_dict() if config.experiment else None,
        "shadow": vars(config.shadow) if config.shadow else None,
        "experiments": [e.name for e in list_experiments(s)][::-1],
        "monitor": rt.monitor,
    }


@router.get("/admin/overview", responses=ADMIN_ONLY)
async def overview(rt: RuntimeDep) -> dict[str, Any]:
    """Everything the dashboard shows except experiment reports."""
    return await anyio.to_thread.run_sync(_overview, rt)


@router.get(
    "/admin/experiments/{name}",
    responses={**ADMIN_ONLY, 404: {"model": ErrorDetail, "description": "no such experiment"}},
)
async def experiment_report(
    rt: RuntimeDep,
    name: Annotated[str, PathParam(pattern=EXPERIMENT_NAME, description="an experiment's name")],
) -> dict[str, Any]:
    """An experiment's per-variant table (`reco experiments report` without the files)."""

    await rt.exposures.flush()  # include this process's latest exposures
    return await anyio.to_thread.run_sync(report, rt.settings, name)
