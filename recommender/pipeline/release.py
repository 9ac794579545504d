"""Promotion and rollback of model versions (``reco models promote | rollback``, and the
the gate in :mod:`recommender.lifecycle.gate`).

A model serves together with its lists: promoting a version means scoring every known user
with it and publishing those lists with one pointer switch (the nightly job pinned to that
version). Rolling back re-points to the previous production run's list slot when that slot
still holds its lists (no rescoring, one Lua switch under the run lock); otherwise it rescores
with the previous version.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from recommender.batch.publication import RunLock, publish
from recommender.config import Settings
from recommender.contract.published import intact_lists, read_live
from recommender.errors import CorruptArtifact, InvalidRequest
from recommender.featurestore.repo import redis_client
from recommender.lifecycle.gate import gate, record_promotion
from recommender.pipeline.nightly import run_nightly
from recommender.training import registry
from recommender.training.artifacts import load_bundle, verify_version

log = logging.getLogger(__name__)


def promote(
    settings: Settings, version: str, force: bool = False, reason: str = ""
) -> dict[str, Any]:
    """Check the gate, then score and publish ``version`` (the nightly job pinned to it)."""
    version = registry.resolve(settings.artifacts_dir, version)
    if version == registry.production(settings.artifacts_dir):
        raise InvalidRequest(f"{version} is already the production version")
    client = redis_client(settings, timeout=10)
    try:
        live = read_live(client, settings.feast_project)
    finally:
        client.close()
    try:  # loading verifies every file's checksum: a corrupt version never reaches the gate
        candidate = load_bundle(settings.artifacts_dir, version)
    except CorruptArtifact as exc:
        raise CorruptArtifact(f"not promoting {version}: {exc}") from exc
    decision, drift = gate(settings, candidate, live)
    if not decision.promote and not force:
        raise InvalidRequest(
            f"the promotion gate refuses {version}: "
            + "; ".join(decision.reasons)
            + " (--force promotes anyway)"
        )
    why = reason or (
        "manual, gate passed" if decision.promote else "manual, gate overridden (--force)"
    )
    manifest = run_nightly(
        settings, model_version=version, resume=False, action="promote", reason=why
    )
    return {
        "version": version,
        "decision": decision.to_dict(),
        "drift": drift,
        "run_id": manifest.run_id,
        "reason": why,
    }


def rollback(settings: Settings, to: str | None = None, reason: str = "") -> dict[str, Any]:
    """Back to the previous production version (or ``to``): a pointer switch when its lists
    are intact, else a rescoring run."""
    root = settings.artifacts_dir
    target = registry.resolve(root, to) if to else registry.rollback_target(root)
    current = registry.production(root)
    if target == current:
        raise InvalidRequest(f"{target} is already the production version")
    try:  # before anything switches: never re-point the lists to a model that cannot load
        verify_version(root, target)
    except CorruptArtifact as exc:
        raise CorruptArtifact(f"not rolling back to {target}: {exc}") from exc
    why = reason or f"rollback from {current}"
    client = redis_client(settings, timeout=10)
    lock = RunLock(
        client, settings.feast_project, f"rollback-{target}", settings.nightly.lock_seconds
    )
    lock.acquire(settings.nightly.lock_wait_seconds)
    try:
        live = read_live(client, settings.feast_project)
        entry = intact_lists(client, settings.feast_project, target)
        if entry is not None and (live is None or entry.slot != live.slot):
            lists = replace(entry, published_at=datetime.now(timezone.utc).isoformat())
            publish(client, settings.feast_project, lock.token, lists)
            record_promotion(settings, target, "rollback", why, entry.run_id)
            log.info(
                "rolled back to %s: lists of run %s (slot %s)", target, entry.run_id, entry.slot
            )
            return {
                "version": target,
                "previous": current,
                "run_id": entry.run_id,
                "how": "pointer switch",
                "reason": why,
            }
    finally:
        lock.release()
        client.close()
    log.info("rolled back to %s: its lists were overwritten, rescoring", target)
    manifest = run_nightly(
        settings, model_version=target, resume=False, action="rollback", reason=why
    )
    return {
        "version": target,
        "previous": current,
        "run_id": manifest.run_id,
        "how": "rescored",
        "reason": why,
    }
