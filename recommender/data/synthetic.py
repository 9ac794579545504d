"""Synthetic catalogs of any size with structure a recommender can learn (for benchmarks and
scale tests; real data stays the default).

Items belong to one or two of ``n_genres`` genres and have power-law popularity; each user
likes two genres and draws 80% of their interactions from them (popularity-weighted), the rest
from the whole catalog; timestamps spread over ``days``. Reproducible from ``seed``.
"""

from __future__ import annotations

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
