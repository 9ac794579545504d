"""The promotion gate with its inputs (I/O edge of :mod:`recommender.lifecycle.promotion`):
offline metrics from the registry, drift checks against the live lists; and recording a
promotion in the registry journal."""

from __future__ import annotations

from typing import Any

from recommender.config import Settings
from recommender.contract.published import LiveLists
from recommender.lifecycle.monitor import candidate_checks, clean
from recommender.lifecycle.promotion import Decision, decide
from recommender.training import registry
from recommender.training.artifacts import ModelBundle, publish_version


def gate(
    settings: Settings, candidate: ModelBundle, live: LiveLists | None
) -> tuple[Decision, dict[str, Any]]:
    """The promotion decision for ``candidate`` against production: offline metrics on the
    same protocol, then drift (features and a top-10 sample against the live lists)."""
    current = registry.production(settings.artifacts_dir)
    prod_manifest = registry.get(settings.artifacts_dir, current).manifest if current else None
    checks: dict[str, Any] = {"reasons": []}
    if prod_manifest is not None:
        checks = candidate_checks(settings, candidate, current, live)
    decision = decide(
        candidate.manifest,
        prod_manifest,
        settings.lifecycle.promotion_metric_names,
        settings.lifecycle.promotion_tolerance,
        checks["reasons"],
    )
    features = checks.get("features")
    drift = {
        "features": clean(features.to_dict("records")) if features is not None else [],
        "lists": clean(checks.get("lists")),
    }
    return decision, drift


def record_promotion(
    settings: Settings, version: str, action: str, reason: str, run_id: str
) -> None:
    """Make ``version`` production on disk (LATEST) and in the journal."""
    previous = registry.production(settings.artifacts_dir)
    if previous == version:
        return
    publish_version(settings.artifacts_dir, version)
    registry.record(
        settings.artifacts_dir, action, version, previous=previous, reason=reason, run_id=run_id
    )
