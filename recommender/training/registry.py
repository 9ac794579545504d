"""The model registry: every trained version under ``<artifacts>/models/<version>/`` (immutable
files plus ``manifest.json``) and one append-only journal, ``registry.jsonl``, of what happened
to them: promoted, rolled back, refused by the promotion gate.

Status is derived from the journal, never stored twice:

* ``production``: the version ``LATEST`` names (the one the nightly job scores with);
* ``archived``: a version that was production before, or was rolled back;
* ``candidate``: every other version (trained, not promoted).

Promotions form a stack: ``rollback`` goes back to the production version before the current
one, skipping versions that were themselves rolled back.

Why not MLflow's registry: our versions are npz/FAISS files with checksummed manifests, and
what serves must switch atomically together with the nightly lists in Redis (the live
pointer). MLflow would be a second source of truth beside that pointer, plus a server and a
database; a journal file beside the versions is enough for a small team and greppable.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recommender.errors import ArtifactNotFound, InvalidRequest
from recommender.training.artifacts import MANIFEST, POINTER, models_dir
from recommender.training.manifest import ModelManifest

log = logging.getLogger(__name__)
JOURNAL = "registry.jsonl"
STATUSES = ("candidate", "production", "archived")
# journal actions after which a version has been production (so is archived once replaced)
ACTIONS_LIVE = ("promote", "publish", "rollback", "archive")
_lock = threading.Lock()


@dataclass
class Version:
    version: str
    status: str
    manifest: ModelManifest
    history: list[dict[str, Any]] = field(default_factory=list)

    def metric(self, name: str, model: str = "als") -> float | None:
        return self.manifest.metric(name, model)

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "version": self.version,
            "status": self.status,
            "created_at": m.created_at,
            "model": m.model,
            "first_event": m.data.first_event,
            "last_event": m.data.last_event,
            "interactions": m.data.interactions,
            "ndcg@10": self.metric("ndcg@10"),
            "recall@10": self.metric("recall@10"),
            "factors": m.params.get("factors"),
            # serving paths the version's replay routes to popularity (None: not replayed)
            "routed_to_popularity": self._routed("popular"),
            # a ranked bundle's new-user paths served by the one-stage fold-in instead
            "routed_to_one_stage": self._routed("one_stage"),
            # with RECO_RANKER: whether the ranker shipped (its replay won), or None
            "ranker": m.ranker_choice.kept if m.ranker_choice is not None else None,
        }

    def _routed(self, route: str) -> list[str] | None:
        paths = self.manifest.served_paths
        if paths is None:
            return None
        return [p for p, e in paths.paths.items() if e.route == route]


def _read_manifest(path: Path) -> ModelManifest:
    return ModelManifest.model_validate_json(path.read_text())


def journal_path(root: Path) -> Path:
    return models_dir(root) / JOURNAL


def read_journal(root: Path) -> list[dict[str, Any]]:
    path = journal_path(root)
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipping a malformed line", path)
    return out


def record(root: Path, action: str, version: str, **info: Any) -> dict[str, Any]:
    """Append one entry to the journal (one write, fsync'ed)."""
    entry = {"at": datetime.now(timezone.utc).isoformat(), "action": action, "version": version}
    entry.update(info)
    path = journal_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    with _lock:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    log.info("registry: %s %s %s", action, version, info.get("reason", ""))
    return entry


def production(root: Path) -> str | None:
    pointer = models_dir(root) / POINTER
    return pointer.read_text().strip() if pointer.exists() else None


def production_stack(journal: Iterable[dict[str, Any]]) -> list[str]:
    """Versions in the order they became production; rollbacks pop. A promotion's
    ``previous`` was production before it, also when nothing recorded how it got there (a
    version published by `reco train`, or a journal older than the ``publish`` entry)."""
    stack: list[str] = []
    for entry in journal:
        if entry["action"] in ("promote", "publish"):
            previous = entry.get("previous")
            if previous and previous != entry["version"] and (not stack or stack[-1] != previous):
                stack.append(previous)
            if stack and stack[-1] == entry["version"]:
                continue
            stack.append(entry["version"])
        elif entry["action"] == "rollback":
            while stack and stack[-1] != entry["version"]:
                stack.pop()
    return stack


def _version_dirs(root: Path) -> list[Path]:
    base = models_dir(root)
    if not base.exists():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / MANIFEST).exists())


def statuses(root: Path, journal: list[dict[str, Any]] | None = None) -> dict[str, str]:
    journal = read_journal(root) if journal is None else journal
    live = production(root)
    out = {p.name: "candidate" for p in _version_dirs(root)}
    for entry in journal:
        if entry["action"] in ACTIONS_LIVE and entry["version"] in out:
            out[entry["version"]] = "archived"
        if entry.get("previous") in out:
            out[entry["previous"]] = "archived"
    if live in out:
        out[live] = "production"
    return out


def get(root: Path, version: str) -> Version:
    path = models_dir(root) / version / MANIFEST
    if not path.exists():
        raise ArtifactNotFound(f"model version {version!r} does not exist under {models_dir(root)}")
    journal = read_journal(root)
    return Version(
        version,
        statuses(root, journal)[version],
        _read_manifest(path),
        [e for e in journal if version in (e["version"], e.get("previous"))],
    )


def list_versions(root: Path) -> list[Version]:
    """Every version, newest first."""
    journal = read_journal(root)
    status = statuses(root, journal)
    out = [
        Version(
            p.name, status[p.name], ModelManifest.model_validate_json((p / MANIFEST).read_text())
        )
        for p in _version_dirs(root)
    ]
    return sorted(out, key=lambda v: v.version, reverse=True)


def rollback_target(root: Path) -> str:
    """The production version before the current one."""
    current = production(root)
    stack = production_stack(read_journal(root))
    if current in stack:
        stack = stack[: len(stack) - 1 - stack[::-1].index(current)]
    for version in reversed(stack):
        if version != current and (models_dir(root) / version / MANIFEST).exists():
            return version
    raise InvalidRequest(
        f"nothing to roll back to: {current or 'no version'} is the only production version "
        "on record (see `reco models list`)"
    )


def served_before(root: Path, exclude: str | None = None) -> list[str]:
    """Versions that have been production, the most recently live first (where to fall back
    when the live one cannot be loaded). Never-promoted candidates are not among them, nor a
    version production was rolled back from (unless it was made production again later)."""
    out: dict[str, None] = {}
    rolled_back: set[str] = set()
    for entry in reversed(read_journal(root)):  # the newest entry first
        version, previous = entry["version"], entry.get("previous")
        if entry["action"] in ACTIONS_LIVE and version not in rolled_back:
            out.setdefault(version, None)
        if entry["action"] == "rollback":
            if previous and previous not in out:
                rolled_back.add(previous)
        elif previous and previous not in rolled_back:
            out.setdefault(previous, None)
    current = production(root)
    ordered = ([current] if current else []) + list(out)
    return [v for v in dict.fromkeys(ordered) if v != exclude]


def resolve(root: Path, version: str) -> str:
    """A version name, or ``production`` / ``live`` for the current one; must exist."""
    if version in ("production", "live"):
        current = production(root)
        if current is None:
            raise ArtifactNotFound("no production model yet; run `reco nightly --retrain`")
        return current
    return get(root, version).version
