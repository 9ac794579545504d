"""Feast's Redis layout, read directly: one HMGET returns every view serving needs for an entity.

Feast stores an entity's features in one Redis hash: the key is the serialized entity key plus
the project name, the fields are ``murmur3("<view>:<feature>")`` and ``_ts:<view>``, the values
are serialized ``ValueProto``/``Timestamp``. Feast's Python ``get_online_features`` costs about
1 ms of CPU per call (type resolution, proto-to-dict conversion); this module computes the same
keys and fields with Feast's own helpers and decodes the values, so a request is one round trip.
Writes still go through Feast. ``tests/recommender/test_online.py`` checks that the values
match ``get_online_features``, so a change of layout in a Feast upgrade fails a test.

The module is pure (keys in, values in, decoded dicts out); the Redis call is the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from feast import FeatureStore
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

ViewValues = dict[str, Any]
KEY_MEMO = 100_000  # entity keys remembered per layout (~100 bytes each)


@dataclass(frozen=True)
class ViewSpec:
    """One feature view as read here: its features and Feast ttl (``None``: never expires)."""

    name: str
    features: tuple[str, ...]
    ttl: timedelta | None


def _decode_value(raw: bytes | None) -> Any:
    if raw is None:
        return None
    value = Value.FromString(raw)
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    got = getattr(value, kind)
    return list(got.val) if kind.endswith("_list_val") else got


def _decode_ts(raw: bytes | None) -> datetime | None:
    if not raw:
        return None
    ts = Timestamp.FromString(raw)
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, timezone.utc)


class FeastLayout:
    """Keys and fields of one entity type's views in a Feast project, and their decoding.

    Example: ``layout.key("42")`` -> the Redis key; ``layout.decode(client.hmget(key,
    layout.fields), now)`` -> ``{"user_profile": {"age": 31, ..., "_ts": datetime}}``.
    """

    def __init__(
        self,
        project: str,
        join_key: str,
        views: Sequence[ViewSpec],
        serialization_version: int = 3,
    ) -> None:
        self.project, self.join_key, self.views = project, join_key, tuple(views)
        self.serialization_version = serialization_version
        self.fields: list[bytes] = []
        self._ttl = {view.name: view.ttl for view in self.views}
        self._keys: dict[str, bytes] = {}
        for view in self.views:
            self.fields += [_mmh3(f"{view.name}:{f}") for f in view.features]
            self.fields.append(f"_ts:{view.name}".encode())

    @classmethod
    def from_store(
        cls,
        store: FeatureStore,
        join_key: str,
        view_names: Sequence[str],
        exclude: Sequence[str] = (),
    ) -> FeastLayout:
        """Views, features and ttls as registered (``feast apply``) in the store's project;
        features named in ``exclude`` are not read."""
        specs = []
        for name in view_names:
            view = store.get_feature_view(name)
            ttl = view.ttl if view.ttl and view.ttl.total_seconds() > 0 else None
            features = tuple(f.name for f in view.features if f.name not in exclude)
            specs.append(ViewSpec(name, features, ttl))
        return cls(store.project, join_key, specs, store.config.entity_key_serialization_version)

    def key(self, entity_id: str) -> bytes:
        """The entity's Redis key (memoised: a proto built and serialised per request was a
        fifth of the warm path's store read)."""
        got = self._keys.get(entity_id)
        if got is None:
            if len(self._keys) >= KEY_MEMO:
                self._keys.clear()
            entity = EntityKey(
                join_keys=[self.join_key], entity_values=[Value(string_val=entity_id)]
            )
            got = _redis_key(self.project, entity, self.serialization_version)
            self._keys[entity_id] = got
        return got

    def decode(
        self, raw: Sequence[bytes | None], now: datetime | None = None
    ) -> dict[str, ViewValues]:
        """Values per view (with ``_ts``), dropping views that are absent or past their ttl."""
        return self.fresh(self.decode_all(raw), now or datetime.now(timezone.utc))

    def decode_all(self, raw: Sequence[bytes | None]) -> dict[str, ViewValues]:
        """Values per view (with ``_ts``) of every view present, whatever its age: what
        :meth:`fresh` filters (a cached reply is decoded once, its ttl checked per request)."""
        out: dict[str, ViewValues] = {}
        pos = 0
        for view in self.views:
            n = len(view.features)
            ts = _decode_ts(raw[pos + n])
            if ts is not None:
                values: ViewValues = {
                    f: _decode_value(raw[pos + j]) for j, f in enumerate(view.features)
                }
                values["_ts"] = ts
                out[view.name] = values
            pos += n + 1
        return out

    def fresh(self, views: Mapping[str, ViewValues], now: datetime) -> dict[str, ViewValues]:
        """The views of :meth:`decode_all` within their ttl at ``now`` (the values are shared,
        not copied: callers read them)."""
        ttl = self._ttl
        return {
            name: values
            for name, values in views.items()
            if ttl[name] is None or now - values["_ts"] <= ttl[name]
        }


def age_seconds(ts: datetime | None, now: datetime) -> float | None:
    return None if ts is None else max(0.0, (now - ts).total_seconds())


def view_ts(values: Mapping[str, ViewValues], view: str) -> datetime | None:
    got = values.get(view)
    return got["_ts"] if got else None
