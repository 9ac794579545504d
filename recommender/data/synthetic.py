"""Synthetic catalogs of any size with structure a recommender can learn (for benchmarks and
scale tests; real data stays the default).

Items belong to one or two of ``n_genres`` genres and have power-law popularity; each user
likes two genres and draws 80% of their interactions from them (popularity-weighted), the rest
from the whole catalog; timestamps spread over ``days``. Reproducible from ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

OCCUPATIONS = ("engineer", "artist", "student", "writer", "doctor", "other")


def synthetic_catalog(
    n_users: int,
    n_items: int,
    n_interactions: int,
    n_genres: int = 20,
    days: int = 60,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Raw ``(interactions, users, items)`` frames, as ``build_tables`` takes them."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, n_genres, n_items)
    second = np.where(rng.random(n_items) < 0.3, rng.integers(0, n_genres, n_items), -1)
    popularity = 1.0 / (rng.permutation(n_items) + 10.0) ** 0.7
    by_genre = [np.flatnonzero((genre == g) | (second == g)) for g in range(n_genres)]
    cum_genre = [np.cumsum(popularity[ix]) / max(popularity[ix].sum(), 1e-12) for ix in by_genre]
    cum_all = np.cumsum(popularity) / popularity.sum()

    counts = np.maximum(3, rng.lognormal(0, 0.8, n_users))
    counts = np.maximum(3, np.round(counts / counts.sum() * n_interactions)).astype(np.int64)
    user_rows = np.repeat(np.arange(n_users), counts)
    tastes = rng.integers(0, n_genres, (n_users, 2))
    chosen_genre = tastes[user_rows, rng.integers(0, 2, len(user_rows))]
    from_taste = rng.random(len(user_rows)) < 0.8
    item_rows = np.empty(len(user_rows), dtype=np.int64)
    draws = rng.random(len(user_rows))
    from_taste &= np.array([len(ix) > 0 for ix in by_genre])[chosen_genre]  # empty genres
    for g in range(n_genres):
        pick = from_taste & (chosen_genre == g)
        if not pick.any():
            continue
        item_rows[pick] = by_genre[g][
            np.searchsorted(cum_genre[g], draws[pick]).clip(0, len(by_genre[g]) - 1)
        ]
    rest = ~from_taste
    item_rows[rest] = np.searchsorted(cum_all, draws[rest]).clip(0, n_items - 1)

    start = pd.Timestamp("2026-01-01", tz="UTC").timestamp()
    inter = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in user_rows],
            "item_id": [f"i{i}" for i in item_rows],
            "rating": rng.integers(1, 6, len(user_rows)),
            "timestamp": (start + rng.uniform(0, days * 86400, len(user_rows))).astype(np.int64),
        }
    ).drop_duplicates(["user_id", "item_id"])
    users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(n_users)],
            "age": rng.integers(16, 70, n_users),
            "gender": rng.choice(["F", "M"], n_users),
            "occupation": [OCCUPATIONS[t % len(OCCUPATIONS)] for t in tastes[:, 0]],
            "zip_code": "00000",
        }
    )
    names = [f"g{g}" for g in range(n_genres)]
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"Item {i}" for i in range(n_items)],
            "year": 1950 + rng.integers(0, 75, n_items),
            "genres": [
                names[g] + (f"|{names[s]}" if s >= 0 and s != g else "")
                for g, s in zip(genre, second, strict=True)
            ],
        }
    )
    return inter, users, items


@dataclass(frozen=True)
class Catalog:
    """The item side of a synthetic catalog, shared by every chunk of users."""

    items: pd.DataFrame
    by_genre: list[np.ndarray]
    cum_genre: list[np.ndarray]
    cum_all: np.ndarray


def synthetic_items(n_items: int, n_genres: int = 20, seed: int = 0) -> Catalog:
    rng = np.random.default_rng([seed, 0])
    genre = rng.integers(0, n_genres, n_items)
    second = np.where(rng.random(n_items) < 0.3, rng.integers(0, n_genres, n_items), -1)
    popularity = 1.0 / (rng.permutation(n_items) + 10.0) ** 0.7
    by_genre = [np.flatnonzero((genre == g) | (second == g)) for g in range(n_genres)]
    cum_genre = [np.cumsum(popularity[ix]) / max(popularity[ix].sum(), 1e-12) for ix in by_genre]
    names = [f"g{g}" for g in range(n_genres)]
    items = pd.DataFrame(
        {
            "item_id": "i" + pd.Series(np.arange(n_items)).astype(str),
            "title": "Item " + pd.Series(np.arange(n_items)).astype(str),
            "year": 1950 + rng.integers(0, 75, n_items),
            "genres": [
                names[g] + (f"|{names[s]}" if s >= 0 and s != g else "")
                for g, s in zip(genre, second, strict=True)
            ],
        }
    )
    return Catalog(items, by_genre, cum_genre, np.cumsum(popularity) / popularity.sum())


def synthetic_user_chunks(
    catalog: Catalog,
    n_users: int,
    n_interactions: int,
    days: int = 60,
    seed: int = 0,
    chunk_users: int = 100_000,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Raw ``(interactions, users)`` of consecutive blocks of ``chunk_users`` users, each from
    its own seeded generator (:func:`synthetic_user_block`): memory is bounded by the chunk, the
    same seed gives the same tables, and the total is close to ``n_interactions`` (the mean per
    user is fixed up front rather than normalised over everyone)."""
    for c in range(-(-n_users // chunk_users)):
        yield synthetic_user_block(catalog, n_users, n_interactions, days, seed, chunk_users, c)


def synthetic_user_block(
    catalog: Catalog,
    n_users: int,
    n_interactions: int,
    days: int,
    seed: int,
    chunk_users: int,
    block: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Block number ``block`` of :func:`synthetic_user_chunks`, on its own (blocks can be
    generated in any order, by any process)."""
    n_genres = len(catalog.by_genre)
    lognormal_mean = float(np.exp(0.8**2 / 2))
    per_user = n_interactions / n_users / lognormal_mean
    start_ts = pd.Timestamp("2026-01-01", tz="UTC").timestamp()
    has_items = np.array([len(ix) > 0 for ix in catalog.by_genre])
    first = block * chunk_users
    rng = np.random.default_rng([seed, 1, block])
    n = min(chunk_users, n_users - first)
    counts = np.maximum(3, np.round(rng.lognormal(0, 0.8, n) * per_user)).astype(np.int64)
    local = np.repeat(np.arange(n), counts)
    tastes = rng.integers(0, n_genres, (n, 2))
    chosen = tastes[local, rng.integers(0, 2, len(local))]
    from_taste = (rng.random(len(local)) < 0.8) & has_items[chosen]
    draws = rng.random(len(local))
    item_rows = np.searchsorted(catalog.cum_all, draws).clip(0, len(catalog.cum_all) - 1)
    order = np.argsort(chosen, kind="stable")
    bounds = np.searchsorted(chosen[order], np.arange(n_genres + 1))
    for g in range(n_genres):
        idx = order[bounds[g] : bounds[g + 1]]
        idx = idx[from_taste[idx]]
        if idx.size:
            ix = catalog.by_genre[g]
            item_rows[idx] = ix[
                np.searchsorted(catalog.cum_genre[g], draws[idx]).clip(0, len(ix) - 1)
            ]
    user_ids = "u" + pd.Series(first + np.arange(n)).astype(str)
    inter = pd.DataFrame(
        {
            "user_id": user_ids.to_numpy()[local],
            "item_id": "i" + pd.Series(item_rows).astype(str),
            "rating": rng.integers(1, 6, len(local)),
            "timestamp": (start_ts + rng.uniform(0, days * 86400, len(local))).astype(np.int64),
        }
    ).drop_duplicates(["user_id", "item_id"])
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "age": rng.integers(16, 70, n),
            "gender": rng.choice(["F", "M"], n),
            "occupation": np.array(OCCUPATIONS)[tastes[:, 0] % len(OCCUPATIONS)],
            "zip_code": "00000",
        }
    )
    return inter, users
