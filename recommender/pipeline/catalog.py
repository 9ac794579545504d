"""Catalog operations: mark items (un)available in the offline items table and the online
store at once, and bump the catalog version so running APIs re-read item metadata."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone

from recommender.config import Settings
from recommender.data.tables import read_table, write_tables
from recommender.errors import InvalidDataset
from recommender.featurestore.names import ITEM_METADATA
from recommender.featurestore.repo import bump_catalog_version, open_store

log = logging.getLogger(__name__)
ONLINE_COLUMNS = ["item_id", "title", "year", "genres", "available", "event_timestamp"]


def set_availability(settings: Settings, item_ids: Sequence[str], available: bool) -> int:
    """Set ``available`` for ``item_ids``; unknown ids fail before anything is written."""
    items = read_table(settings.data_dir, "items")
    if "available" not in items:
        items["available"] = True
    unknown = sorted(set(item_ids) - set(items["item_id"]))
    if unknown:
        raise InvalidDataset(f"unknown item ids: {', '.join(unknown[:20])}")
    chosen = items["item_id"].isin(list(item_ids))
    items.loc[chosen, "available"] = available
    items.loc[chosen, "event_timestamp"] = datetime.now(timezone.utc)
    store = open_store(settings)  # fail before writing if the repo is not usable
    write_tables({"items": items}, settings.data_dir)
    store.write_to_online_store(ITEM_METADATA, items.loc[chosen, ONLINE_COLUMNS])
    bump_catalog_version(settings)
    log.info("marked %d item(s) available=%s", int(chosen.sum()), available)
    return int(chosen.sum())
