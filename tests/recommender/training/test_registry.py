"""The registry journal: what was production, in which order, and where to fall back."""

from __future__ import annotations

from pathlib import Path

from recommender.training import registry
from recommender.training.artifacts import POINTER, models_dir
from recommender.training.manifest import ModelManifest, PathEvidence, RankerChoice, ServedPaths


def test_a_promotions_previous_version_was_production_before_it() -> None:
    # v1 went live without a journal entry (published by `reco train` before the journal
    # recorded it); v2's promotion names it as previous
    journal = [{"action": "promote", "version": "v2", "previous": "v1"}]
    assert registry.production_stack(journal) == ["v1", "v2"]
    journal += [{"action": "rollback", "version": "v1", "previous": "v2"}]
    assert registry.production_stack(journal) == ["v1"]
    published = [
        {"action": "publish", "version": "v1", "previous": None},
        {"action": "refuse", "version": "v2"},
        {"action": "promote", "version": "v3", "previous": "v1"},
    ]
    assert registry.production_stack(published) == ["v1", "v3"]


def test_fallbacks_are_versions_that_were_live_most_recent_first(tmp_path: Path) -> None:
    for v in ("v1", "v2", "v3", "v4"):
        (models_dir(tmp_path) / v).mkdir(parents=True)
    registry.record(tmp_path, "publish", "v1", previous=None)
    registry.record(tmp_path, "promote", "v2", previous="v1")
    registry.record(tmp_path, "refuse", "v4")  # never live: never a fallback
    registry.record(tmp_path, "rollback", "v1", previous="v2")
    (models_dir(tmp_path) / POINTER).write_text("v1\n")
    # v2 was rolled back from: it is no fallback, however recently it was live
    assert registry.served_before(tmp_path) == ["v1"]
    assert registry.served_before(tmp_path, exclude="v1") == []
    registry.record(tmp_path, "promote", "v3", previous="v1")
    (models_dir(tmp_path) / POINTER).write_text("v3\n")
    assert registry.served_before(tmp_path) == ["v3", "v1"]
    registry.record(tmp_path, "promote", "v2", previous="v3")  # promoted again: trusted again
    (models_dir(tmp_path) / POINTER).write_text("v2\n")
    assert registry.served_before(tmp_path, exclude="v2") == ["v3", "v1"]


def test_a_versions_summary_names_its_routed_paths_and_whether_the_ranker_shipped() -> None:
    def path(name: str, route: str) -> PathEvidence:
        return PathEvidence(
            path=name, users=30, ndcg=0.2, fallback_ndcg=0.3, ratio=0.67, diff_low=-0.1,
            diff_high=0.0, route=route,  # type: ignore[arg-type]
        )  # fmt: skip

    manifest = ModelManifest(
        served_paths=ServedPaths(
            cutoff="t",
            paths={
                "known": path("known", "model"),
                "new:1": path("new:1", "popular"),
                "new:3": path("new:3", "one_stage"),
            },
        ),
        ranker_choice=RankerChoice(kept=True, reason="won"),
    )
    summary = registry.Version("v1", "production", manifest).summary()
    assert summary["routed_to_popularity"] == ["new:1"]
    assert summary["routed_to_one_stage"] == ["new:3"] and summary["ranker"] is True
    plain = registry.Version("v0", "archived", ModelManifest()).summary()
    assert plain["routed_to_popularity"] is None and plain["ranker"] is None
