"""The nightly job: lock -> ingest logged events -> model (retrained candidates pass the
promotion gate first) -> score every known user chunk by chunk into the unpublished list slot
-> materialize features -> publish (one atomic pointer switch; a promoted model goes live with
its lists) -> drift monitor; the run manifest records every step.

Safe to kill at any point: nothing a reader sees changes before the switch, and a rerun
resumes the unfinished run's remaining chunks (:mod:`recommender.pipeline.nightrun`).
"""

from __future__ import annotations

import gc
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from recommender.batch.listrun import score_and_write
from recommender.batch.publication import publish
from recommender.config import Settings
from recommender.contract.published import LiveLists
from recommender.contract.runs import RunManifest
from recommender.data.lists import prune_runs, publish_parts
from recommender.data.tables import read_table
from recommender.errors import ArtifactNotFound
from recommender.events.log import quarantined_count
from recommender.featurestore.repo import materialize, open_store
from recommender.lifecycle.gate import gate, record_promotion
from recommender.lifecycle.monitor import monitor
from recommender.pipeline.ingest import ingest_event_log
from recommender.pipeline.nightrun import NightRun, night_run
from recommender.pipeline.train import train
from recommender.training import registry
from recommender.training.artifacts import ModelBundle, load_bundle

log = logging.getLogger(__name__)


def run_nightly(
    settings: Settings,
    retrain: bool = False,
    engine: str | None = None,
    resume: bool = True,
    model_version: str | None = None,
    action: str = "promote",
    reason: str = "",
) -> RunManifest:
    """Run every step under the project's run lock; the manifest says what happened, also
    when a step fails or the run is interrupted. ``model_version`` pins the model (promotion
    and rollback); ``action`` and ``reason`` are what the registry journal records."""
    with night_run(settings, resume, engine) as run:
        if run.manifest.action is None:  # a resumed run keeps what its first attempt was for
            run.manifest.action, run.manifest.reason = action, reason
        run.step("events", ingest_events, run)
        bundle = run.step("load", choose_model, run, retrain, model_version)
        run.step("score_and_write", score_lists, run, bundle, engine)
        run.step("materialize", materialize_features, run)
        lists = run.step("publish", publish_lists, run, bundle)
        run.step("monitor", monitor_lists, run, lists)
    m = run.manifest
    log.info(
        "nightly %s succeeded: %d users in slot %s, model %s",
        m.run_id,
        m.users,
        m.slot,
        m.model_version,
    )
    return m


def ingest_events(run: NightRun) -> None:
    """The event log's new events into the interactions table (quarantined lines counted)."""
    run.manifest.events_ingested = ingest_event_log(run.settings)
    run.manifest.events_quarantined = quarantined_count(run.settings.event_log_dir)


def choose_model(run: NightRun, retrain: bool, pinned: str | None) -> ModelBundle:
    bundle = _model(run.settings, run.manifest, retrain, pinned, run.live)
    gc.freeze()  # the model's millions of objects never need the cyclic GC again
    run.manifest.model_version = bundle.version
    run.manifest.lists = "ranked" if bundle.ranking is not None else "als"
    run.manifest.users = len(bundle.users)
    return bundle


def score_lists(run: NightRun, bundle: ModelBundle, engine: str | None) -> None:
    """Every user's list into the run's slot (its parts timed separately too)."""
    parts = score_and_write(run.settings, bundle, run.manifest, run.lock, engine)
    for name, seconds in parts.items():
        run.add_seconds(name, seconds)


def materialize_features(run: NightRun) -> None:
    events = read_table(run.settings.data_dir, "interactions", ["event_timestamp"])
    earliest = (events["event_timestamp"].min() - timedelta(days=1)).to_pydatetime()
    run.manifest.materialized = materialize(
        open_store(run.settings), run.client, datetime.now(timezone.utc), earliest
    )


def publish_lists(run: NightRun, bundle: ModelBundle) -> LiveLists:
    """The pointer switch (fenced by the lock), then the registry: a trained or pinned model
    goes live with these lists, journaled as the run's ``action`` (promote or rollback)."""
    settings, manifest = run.settings, run.manifest
    run.lock.check()
    publish_parts(settings.data_dir, run.run_id)
    lists = LiveLists(
        slot=manifest.slot,
        run_id=run.run_id,
        model_version=bundle.version,
        published_at=datetime.now(timezone.utc).isoformat(),
        users=manifest.users,
    )
    publish(run.client, settings.feast_project, run.lock.token, lists)
    manifest.published_at = lists.published_at  # live from here on, whatever follows
    if manifest.model_source in ("trained", "pinned"):
        reasons = "; ".join((manifest.promotion or {}).get("reasons", []))
        why = manifest.reason or reasons
        record_promotion(settings, bundle.version, manifest.action or "promote", why, run.run_id)
    manifest.pruned_runs = prune_runs(
        settings.data_dir, settings.nightly.keep_list_runs, protect={run.run_id}
    )
    return lists


def monitor_lists(run: NightRun, lists: LiveLists) -> None:
    run.manifest.monitor = _monitor(run.settings, lists)


def _model(
    settings: Settings,
    manifest: RunManifest,
    retrain: bool,
    pinned: str | None,
    live: LiveLists | None,
) -> ModelBundle:
    """The run's model: the one a resumed run started with, the pinned one (promotion and
    rollback), production, or a retrained candidate if the promotion gate passes it."""
    if manifest.model_version:  # resuming: the model the run started with
        return load_bundle(settings.artifacts_dir, manifest.model_version)
    if pinned is not None:  # `reco models promote | rollback`
        manifest.model_source = "pinned"
        return load_bundle(settings.artifacts_dir, pinned)
    if not retrain:
        try:
            bundle = load_bundle(settings.artifacts_dir)
            manifest.model_source = "loaded"
            return bundle
        except ArtifactNotFound:
            pass
    candidate = train(settings, publish=False)
    decision, drift = gate(settings, candidate, live)
    manifest.promotion = {
        "candidate": candidate.version,
        **decision.to_dict(),
        "drift": drift,
    }
    log.info(
        "promotion gate for %s: %s (%s)",
        candidate.version,
        "promote" if decision.promote else "keep production",
        "; ".join(decision.reasons),
    )
    if decision.promote:
        manifest.model_source = "trained"
        return candidate
    registry.record(
        settings.artifacts_dir,
        "refuse",
        candidate.version,
        reason="; ".join(decision.reasons),
        run_id=manifest.run_id,
    )
    manifest.model_source = "loaded"
    return load_bundle(settings.artifacts_dir)


def _monitor(settings: Settings, lists: LiveLists) -> dict[str, Any]:
    """Drift of the run just published; a failure here never fails a published run."""
    try:
        summary = monitor(settings, lists)
    except Exception as exc:  # noqa: BLE001 - published already; report, do not fail
        log.exception("drift monitor failed")
        return {"error": f"{type(exc).__name__}: {exc}"}
    if summary.get("suspicious"):
        log.warning("run %s looks suspicious: %s", lists.run_id, "; ".join(summary["reasons"]))
    return {k: summary.get(k) for k in ("suspicious", "reasons", "lists")}
