"""Every Feast name the platform uses, once: entities, offline tables, feature views, feature
services and the push source. ``feature_repo/definitions.py`` declares the objects with these
names; the code asks for them by these constants, never by a string literal."""

from __future__ import annotations

# Entities and their join keys
USER_ENTITY = "user"
ITEM_ENTITY = "item"
USER_KEY = "user_id"
ITEM_KEY = "item_id"

# Offline tables (``data/<table>.parquet``); each is the source of the view of the same name
USERS_TABLE = "users"
ITEMS_TABLE = "items"
USER_ACTIVITY = "user_activity"
ITEM_STATS = "item_stats"
USER_RECENT_ITEMS = "user_recent_items"
LISTS_TABLE = "user_recommendations"  # one folder per published nightly run

# Feature views
USER_PROFILE = "user_profile"  # from the users table
ITEM_METADATA = "item_metadata"  # from the items table
# USER_ACTIVITY, ITEM_STATS and USER_RECENT_ITEMS are views of their tables, same names

# The nightly lists, blue/green: one view and one feature service per slot
SLOTS = ("a", "b")
LIST_VIEW_PREFIX = LISTS_TABLE + "_"
PRECOMPUTED_SERVICE_PREFIX = "serving_precomputed_"

# Feature services and the push source
REALTIME_SERVICE = "serving_realtime_v1"
TRAINING_USER_SERVICE = "training_user_features_v1"
RANKER_SERVICE = "ranker_features_v1"  # the learned ranker's user and item features
EVENTS_PUSH_SOURCE = "user_events_push"


def list_view(slot: str) -> str:
    """The feature view of one list slot (``user_recommendations_a`` / ``_b``)."""
    if slot not in SLOTS:
        raise ValueError(f"slot must be one of {SLOTS}, not {slot!r}")
    return LIST_VIEW_PREFIX + slot


def precomputed_service(slot: str) -> str:
    """The feature service of one list slot (``serving_precomputed_a`` / ``_b``)."""
    if slot not in SLOTS:
        raise ValueError(f"slot must be one of {SLOTS}, not {slot!r}")
    return PRECOMPUTED_SERVICE_PREFIX + slot


def source_name(table: str) -> str:
    """The Feast data source of an offline table."""
    return f"{table}_source"


def feature_column(view: str, feature: str) -> str:
    """The column Feast names a feature with ``full_feature_names=True`` (``view__feature``)."""
    return f"{view}__{feature}"
