"""The registry journal: what was production, in which order, and where to fall back."""

from __future__ import annotations

from pathlib import Path

from recommender.training import registry
from recommender.training.artifacts import POINTER, models_dir


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
