"""Nightly run manifests: ``<artifacts>/runs/<run_id>.json``, rewritten atomically after every
step and every finished chunk, so a killed run leaves an exact record of what it finished.

One typed record, :class:`RunManifest`: ``status`` (running, succeeded, failed, interrupted,
abandoned), the model version, the slot it writes, ``top_n`` and ``chunk_users`` (a resume
must cut the same chunks), ``chunks_done``, counts, per-phase durations and peak memory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recommender.config import Settings
from recommender.fileio import write_text_atomic

log = logging.getLogger(__name__)
FINISHED = ("succeeded", "abandoned")
Status = Literal["running", "succeeded", "failed", "interrupted", "abandoned"]


class RunManifest(BaseModel):
    """What one nightly run did, rewritten after every step and finished chunk."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    run_id: str
    started_at: str
    lists_timestamp: str
    slot: str
    top_n: int
    chunk_users: int
    chunks_done: list[int] = Field(default_factory=list)
    durations_s: dict[str, float] = Field(default_factory=dict)
    status: Status = "running"
    engine: str | None = None
    error: str | None = None
    note: str | None = None
    # what the registry journal records when this run publishes a trained or pinned model
    # (kept from its first attempt, so that a resumed rollback is journaled as a rollback)
    action: str | None = None
    reason: str | None = None
    resumed: int = 0
    model_version: str | None = None
    model_source: Literal["loaded", "trained", "pinned"] | None = None
    lists: Literal["als", "ranked"] | None = None  # ALS top-N, or two-stage (RECO_RANKER)
    promotion: dict[str, Any] | None = None  # the gate's decision and drift checks
    users: int = 0
    users_written: int = 0
    chunks_total: int = 0
    lists_shorter_than_top_n: int = 0
    events_ingested: int = 0
    events_quarantined: int = 0
    materialized: dict[str, str] = Field(default_factory=dict)  # view -> full | incremental
    published_at: str | None = None
    pruned_runs: list[str] = Field(default_factory=list)
    monitor: dict[str, Any] | None = None  # the drift monitor's summary of this run
    finished_at: str | None = None
    peak_rss_mb: dict[str, float] = Field(default_factory=dict)


def runs_dir(settings: Settings) -> Path:
    return settings.artifacts_dir / "runs"


def write_manifest(settings: Settings, manifest: RunManifest) -> None:
    path = runs_dir(settings) / f"{manifest.run_id}.json"
    write_text_atomic(path, manifest.model_dump_json(indent=2))


def read_manifests(settings: Settings) -> list[RunManifest]:
    """Every run's manifest, oldest first (run ids sort by start time); unreadable files are
    skipped with a warning."""
    out = []
    folder = runs_dir(settings)
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            out.append(RunManifest.model_validate_json(path.read_text()))
        except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            log.warning("skipping unreadable run manifest %s: %s", path, exc)
    return out
