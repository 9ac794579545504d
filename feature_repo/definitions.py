"""Feast definitions for the recommender, read top to bottom:
entities -> sources -> feature views -> feature services.

Offline tables are parquet files under ``data/`` (written by ``reco data fetch`` and
``reco nightly``); online values live in Redis. Paths are this folder's ``data/``.

TTLs: a ttl of 0 means "never expires" in Feast. Profiles, item metadata and the activity
snapshots carry their own validity (snapshots already encode their 30-day window), so they
use 0; MovieLens events are from 1997-98, and a finite ttl would hide them. Precomputed lists
and recent items go stale, so they have real ttls.
"""

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast.types import Array, Bool, Float32, Int32, Int64, String
from feast.value_type import ValueType

from recommender.featurestore import names as n

# --- Entities ------------------------------------------------------------------------------
# Ids are strings everywhere: MovieLens ids are digits, other catalogs are not.
user = Entity(
    name=n.USER_ENTITY,
    join_keys=[n.USER_KEY],
    value_type=ValueType.STRING,
    description="A person receiving recommendations.",
)
item = Entity(
    name=n.ITEM_ENTITY,
    join_keys=[n.ITEM_KEY],
    value_type=ValueType.STRING,
    description="A catalog item (a movie for MovieLens).",
)


# --- Sources -------------------------------------------------------------------------------
# Absolute paths, resolved where `feast apply` runs: the DuckDB offline store reads a relative
# path from the process's working directory, not from this folder as the file store does.
DATA = Path(__file__).resolve().parent / "data"


def parquet_source(table: str) -> FileSource:
    """The offline table ``data/<table>.parquet`` written by `reco data fetch` / `reco nightly`."""
    return FileSource(
        name=n.source_name(table),
        path=str(DATA / f"{table}.parquet"),
        timestamp_field="event_timestamp",
    )


users_source = parquet_source(n.USERS_TABLE)
user_activity_source = parquet_source(n.USER_ACTIVITY)
items_source = parquet_source(n.ITEMS_TABLE)
item_stats_source = parquet_source(n.ITEM_STATS)
recent_items_source = parquet_source(n.USER_RECENT_ITEMS)
# One folder per published nightly run (recommender/data/lists.py), read as one table: a glob,
# which DuckDB, dask and our engine read alike (DuckDB does not read a folder).
recommendations_source = FileSource(
    name=n.source_name(n.LISTS_TABLE),
    path=str(DATA / n.LISTS_TABLE / "**" / "*.parquet"),
    timestamp_field="event_timestamp",
)

# Real-time events for a user (newest items first). The serving side pushes here so a user
# the nightly model has never seen can be folded in; the batch side is the daily snapshot.
user_events_push = PushSource(name=n.EVENTS_PUSH_SOURCE, batch_source=recent_items_source)


# --- Feature views -------------------------------------------------------------------------
def activity_fields() -> list[Field]:
    """Counts and mean ratings over 30 days and all time (recommender.data.snapshots)."""
    return [
        Field(name="interactions_30d", dtype=Int64),
        Field(name="mean_rating_30d", dtype=Float32),
        Field(name="interactions_total", dtype=Int64),
        Field(name="mean_rating_total", dtype=Float32),
    ]


# Demographics used by the profile-only cold-start vector. Valid from the user's first event.
user_profile = FeatureView(
    name=n.USER_PROFILE,
    entities=[user],
    ttl=timedelta(0),
    source=users_source,
    schema=[
        Field(name="age", dtype=Int64),
        Field(name="gender", dtype=String),
        Field(name="occupation", dtype=String),
        Field(name="zip_code", dtype=String),
    ],
)

# Point-in-time activity: daily snapshots computed only from events before each snapshot.
user_activity = FeatureView(
    name=n.USER_ACTIVITY,
    entities=[user],
    ttl=timedelta(0),
    source=user_activity_source,
    schema=activity_fields(),
)

# The last items a user touched: batch snapshots plus real-time pushes. A pushed list older
# than a week no longer describes the current session.
user_recent_items = FeatureView(
    name=n.USER_RECENT_ITEMS,
    entities=[user],
    ttl=timedelta(days=7),
    source=user_events_push,
    schema=[Field(name="recent_item_ids", dtype=Array(String))],
)

# Catalog metadata shown next to recommendations and used by filters (the API re-reads it
# from the online store every RECO_CATALOG_REFRESH_SECONDS).
item_metadata = FeatureView(
    name=n.ITEM_METADATA,
    entities=[item],
    ttl=timedelta(0),
    source=items_source,
    schema=[
        Field(name="title", dtype=String),
        Field(name="year", dtype=Int64),
        Field(name="genres", dtype=Array(String)),
        Field(name="available", dtype=Bool),  # False: never recommended (out of stock, removed)
    ],
)

# Popularity per item, same point-in-time snapshots as user activity.
item_stats = FeatureView(
    name=n.ITEM_STATS,
    entities=[item],
    ttl=timedelta(0),
    source=item_stats_source,
    schema=activity_fields(),
)


# Top-N lists written by the nightly job, blue/green: a run fills the slot no API serves and
# then switches the pointer `reco:<project>:lists:live` (recommender/publication.py), so a
# killed run never leaves half a version live. `reco lists live` names the live slot. A list
# older than three days means the nightly job is failing; serving then falls back to the
# real-time path.
def recommendations_view(slot: str) -> FeatureView:
    return FeatureView(
        name=n.list_view(slot),
        entities=[user],
        ttl=timedelta(days=3),
        source=recommendations_source,
        schema=[
            Field(name="rec_item_ids", dtype=Array(String)),
            Field(name="rec_scores", dtype=Array(Float32)),
            Field(name="model_version", dtype=String),
            Field(name="run_id", dtype=String),
            # per item: a bit mask of the rec_source_names that proposed it (bit j: name j);
            # empty when every item comes from the one source named (ALS lists)
            Field(name="rec_sources", dtype=Array(Int32)),
            Field(name="rec_source_names", dtype=String),  # comma-separated
        ],
    )


user_recommendations_a = recommendations_view("a")
user_recommendations_b = recommendations_view("b")

# --- Feature services (what serving and training ask for, by name) -------------------------
serving_precomputed_a = FeatureService(
    name=n.precomputed_service("a"),
    features=[user_recommendations_a],
    description="Warm path, slot a: the nightly top-N list of a known user.",
)
serving_precomputed_b = FeatureService(
    name=n.precomputed_service("b"),
    features=[user_recommendations_b],
    description="Warm path, slot b: the nightly top-N list of a known user.",
)
serving_realtime_v1 = FeatureService(
    name=n.REALTIME_SERVICE,
    features=[user_recent_items, user_profile[["age", "gender", "occupation"]]],
    description="Cold path: what we know of a user the model has not seen.",
)
training_user_features_v1 = FeatureService(
    name=n.TRAINING_USER_SERVICE,
    features=[user_profile[["age", "gender", "occupation"]], user_activity],
    description="Point-in-time user features for models that learn from user attributes.",
)
ranker_features_v1 = FeatureService(
    name=n.RANKER_SERVICE,
    features=[
        user_activity,
        user_profile[["age", "gender"]],
        item_stats,
        item_metadata[["year"]],
    ],
    description="Point-in-time user and item features of the learned ranker (recommender.ranking).",
)
