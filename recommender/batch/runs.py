"""Nightly run manifests: ``<artifacts>/runs/<run_id>.json``, rewritten atomically after every
step and every finished chunk, so a killed run leaves an exact record of what it finished.

A manifest holds: ``status`` (running, succeeded, failed, interrupted, abandoned), the model
version, the slot it writes, ``top_n`` and ``chunk_users`` (a resume must cut the same
chunks), ``chunks_done``, counts, per-phase durations and peak memory.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from recommender.batch.publication import LiveLists
from recommender.config import Settings
from recommender.fileio import write_text_atomic

log = logging.getLogger(__name__)
FINISHED = ("succeeded", "abandoned")


def runs_dir(settings: Settings) -> Path:
    return settings.artifacts_dir / "runs"


def write_manifest(settings: Settings, manifest: dict[str, Any]) -> None:
    path = runs_dir(settings) / f"{manifest['run_id']}.json"
    write_text_atomic(path, json.dumps(manifest, indent=2, default=str))


def read_manifests(settings: Settings) -> list[dict[str, Any]]:
    """Every run's manifest, oldest first (run ids sort by start time); unreadable files are
    skipped with a warning."""
    out = []
    folder = runs_dir(settings)
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable run manifest %s: %s", path, exc)
    return out


def resumable(
    settings: Settings, live: LiveLists | None, top_n: int, chunk_users: int
) -> dict[str, Any] | None:
    """The latest run if it stopped before publishing and can be continued as it was: the
    same list length and chunking, its model recorded, and its slot still not live."""
    runs = read_manifests(settings)
    if not runs:
        return None
    last = runs[-1]
    reason = None
    if last.get("status") in FINISHED:
        return None
    if live is not None and live.run_id == last["run_id"]:
        reason = "it had already published"
    elif not last.get("model_version") or not last.get("slot"):
        reason = "it stopped before choosing its model"
    elif live is not None and live.slot == last["slot"]:
        reason = "its slot has since been published by another run"
    elif (last.get("top_n"), last.get("chunk_users")) != (top_n, chunk_users):
        reason = "top_n or chunk_users changed"
    if reason:
        log.info("not resuming run %s: %s", last["run_id"], reason)
        published = live is not None and live.run_id == last["run_id"]
        last["status"] = "succeeded" if published else "abandoned"
        last["note"] = f"not resumed: {reason}"
        write_manifest(settings, last)
        return None
    return last
