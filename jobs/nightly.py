"""Nightly job: train or load the model -> top-N for every known user in batches -> write
to the Feast online view and the offline table -> materialize features -> run manifest.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from jobs.ingest import ingest_event_log
from jobs.train import train
from recommender.artifacts import ModelBundle, load_bundle, new_version
from recommender.config import Settings
from recommender.data.tables import append_recommendations, read_table
from recommender.errors import ArtifactNotFound
from recommender.fileio import write_text_atomic
from recommender.store import materialize, open_store, write_recommendations
from recommender.training import top_n_lists

log = logging.getLogger(__name__)


def precompute(
    bundle: ModelBundle, top_n: int, batch_size: int, run_id: str, now: datetime
) -> pd.DataFrame:
    """Top-N lists (seen items excluded) for every user of the model, with their lineage."""
    lists = top_n_lists(bundle, top_n, batch_size)
    lists["model_version"] = bundle.version
    lists["run_id"] = run_id
    lists["event_timestamp"] = pd.Timestamp(now)
    return lists


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(manifest, indent=2, default=str))


def run_nightly(settings: Settings, retrain: bool = False) -> dict[str, Any]:
    """Run every step; the run manifest says what happened, also when a step fails."""
    run_id = new_version()
    manifest_path = settings.artifacts_dir / "runs" / f"{run_id}.json"
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "started_at": datetime.now(timezone.utc),
        "durations_s": {},
    }
    durations = manifest["durations_s"]

    def step(name: str, t0: float) -> None:
        durations[name] = round(time.perf_counter() - t0, 3)
        log.info("nightly %s: %s done in %.2fs", run_id, name, durations[name])

    _write_manifest(manifest_path, manifest)
    try:
        store = open_store(settings)
        t0 = time.perf_counter()
        manifest["events_ingested"] = ingest_event_log(settings)
        step("events", t0)

        t0 = time.perf_counter()
        try:
            bundle = (
                train(settings, store=store) if retrain else load_bundle(settings.artifacts_dir)
            )
            manifest["model_source"] = "trained" if retrain else "loaded"
        except ArtifactNotFound:
            bundle = train(settings, store=store)
            manifest["model_source"] = "trained"
        manifest["model_version"] = bundle.version
        step("model", t0)

        t0 = time.perf_counter()
        now = datetime.now(timezone.utc)
        lists = precompute(bundle, settings.top_n, settings.batch_size, run_id, now)
        step("score", t0)

        t0 = time.perf_counter()
        for start in range(0, len(lists), 10_000):
            write_recommendations(store, lists.iloc[start : start + 10_000])
        append_recommendations(lists, settings.data_dir)
        step("write", t0)

        t0 = time.perf_counter()
        events = read_table(settings.data_dir, "interactions", ["event_timestamp"])[
            "event_timestamp"
        ]
        earliest = (events.min() - timedelta(days=1)).to_pydatetime()
        manifest["materialized"] = materialize(store, now, earliest)
        step("materialize", t0)

        manifest.update(
            status="succeeded",
            users=len(lists),
            top_n=settings.top_n,
            lists_shorter_than_top_n=int((lists["rec_item_ids"].map(len) < settings.top_n).sum()),
        )
    except BaseException as exc:
        manifest.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        manifest["finished_at"] = datetime.now(timezone.utc)
        _write_manifest(manifest_path, manifest)
    log.info(
        "nightly %s succeeded: %d users, model %s",
        run_id,
        manifest["users"],
        manifest["model_version"],
    )
    return manifest
