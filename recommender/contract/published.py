"""The contract between the nightly job and serving: what a run publishes and every reader
(the API, the drift monitor, the promotion gate, rollback) reads. Two list slots (Feast views
``user_recommendations_a`` / ``_b``), a pointer naming the live one with its run and model
(:class:`LiveLists`), the history of pointers, each slot's owner run, and the keys they live
under. Reading only: writing the lists, the run lock and the pointer switch belong to
:mod:`recommender.batch.publication`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from feast import FeatureStore

from recommender.config import Settings
from recommender.data.lists import split_source_names
from recommender.featurestore.keys import project_key
from recommender.featurestore.names import SLOTS, list_view, precomputed_service
from recommender.featurestore.redisclient import RedisClient
from recommender.featurestore.repo import online_row, redis_client

log = logging.getLogger(__name__)


def live_key(project: str) -> str:
    """The pointer: which slot APIs serve (``reco:{<project>}:lists:live``)."""
    return project_key(project, "lists", "live")


def history_key(project: str) -> str:
    return project_key(project, "lists", "history")


def monitor_key(project: str) -> str:
    """The last drift summary of `reco monitor` (APIs export it as gauges)."""
    return project_key(project, "monitor")


def slot_key(project: str, slot: str) -> str:
    """The run that last wrote into ``slot`` (set before its first write): a rollback may
    re-point to an old run's slot only while that slot still holds that run's lists."""
    return project_key(project, "lists", "slot", slot)


def slot_owner(client: RedisClient, project: str, slot: str) -> str | None:
    raw = client.get(slot_key(project, slot))
    if isinstance(raw, bytes):
        return raw.decode()
    return raw if isinstance(raw, str) else None


@dataclass(frozen=True)
class LiveLists:
    """What the pointer says: the slot APIs serve and the run that filled it."""

    slot: str
    run_id: str
    model_version: str
    published_at: str
    users: int

    @property
    def view(self) -> str:
        return list_view(self.slot)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, raw: bytes | str | None) -> LiveLists | None:
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError):
            log.error("ignoring a malformed live-lists pointer: %r", raw[:200])
            return None


def read_live(client: RedisClient, project: str) -> LiveLists | None:
    return LiveLists.parse(client.get(live_key(project)))  # type: ignore[arg-type]


def history(client: RedisClient, project: str, n: int = 20) -> list[LiveLists]:
    raw = client.lrange(history_key(project), 0, n - 1)
    return [p for p in (LiveLists.parse(r) for r in raw) if p is not None]  # type: ignore[union-attr]


def intact_lists(client: RedisClient, project: str, version: str, n: int = 100) -> LiveLists | None:
    """The newest published lists of model ``version`` whose slot still holds them (no later
    run has written into it), or None."""
    for entry in history(client, project, n):
        if (
            entry.model_version == version
            and slot_owner(client, project, entry.slot) == entry.run_id
        ):
            return entry
    return None


def next_slot(live: LiveLists | None) -> str:
    """The slot a new run writes: the one not served."""
    return SLOTS[1] if live is not None and live.slot == SLOTS[0] else SLOTS[0]


def live_lists(settings: Settings) -> LiveLists | None:
    """Which list slot is live, and which run filled it (None before the first run)."""
    client = redis_client(settings)
    try:
        return read_live(client, settings.feast_project)
    finally:
        client.close()


def read_precomputed(
    store: FeatureStore, user_id: str, live: LiveLists | None
) -> dict[str, Any] | None:
    """The live nightly list of a user through Feast's ``get_online_features`` (as feature
    consumers read it), or None when there is none."""
    if live is None:
        return None
    row = online_row(store, precomputed_service(live.slot), user_id)
    if not row.get("rec_item_ids") or row.get("run_id") != live.run_id:
        return None
    ts = row.get("rec_item_ids__ts") or 0
    return {
        "item_ids": list(row["rec_item_ids"]),
        "scores": list(row.get("rec_scores") or []),
        "sources": list(row.get("rec_sources") or []),
        "source_names": split_source_names(row.get("rec_source_names")),
        "model_version": row.get("model_version"),
        "run_id": row.get("run_id"),
        "generated_at": datetime.fromtimestamp(ts, timezone.utc) if ts else None,
    }
