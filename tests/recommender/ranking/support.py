"""Data with a provable answer for the ranker's tests: for a month every user touches random
items; in the week after each of two cut-offs everyone turns to that week's few hit items
(other ones each time). Nothing known before a cut-off tells which items those are, but
features stamped after it do."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.data.tables import build_tables
from recommender.data.vocab import Vocab
from recommender.ranking.features import Genres

START = pd.Timestamp("2024-01-01", tz="UTC")
CUTOFF = pd.Timestamp("2024-02-01", tz="UTC")
SECOND = pd.Timestamp("2024-03-15", tz="UTC")  # its 30-day window misses the first weeks
LABEL_DAYS = 7
HITS = {CUTOFF: [f"i{j}" for j in range(6)], SECOND: [f"i{j}" for j in range(6, 12)]}


def hit_tables(
    rng: np.random.Generator, n_users: int = 60, n_items: int = 40
) -> dict[str, pd.DataFrame]:
    items = [f"i{j}" for j in range(n_items)]
    rows = []
    for u in range(n_users):
        seen = rng.choice(items, size=10, replace=False)
        days = np.sort(rng.uniform(0, 30, size=len(seen)))
        rows += [
            (f"u{u}", i, int(rng.integers(1, 6)), START + pd.Timedelta(days=d))
            for i, d in zip(seen, days, strict=True)
        ]
        for cutoff, hits in HITS.items():
            fresh = [h for h in hits if h not in set(seen)]
            later = rng.choice(fresh, size=min(3, len(fresh)), replace=False)
            days = np.sort(rng.uniform(0.5, LABEL_DAYS - 0.5, size=len(later)))
            rows += [
                (f"u{u}", i, 5, cutoff + pd.Timedelta(days=d))
                for i, d in zip(later, days, strict=True)
            ]
            seen = np.concatenate([seen, later])
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "ts"])
    inter["timestamp"] = (inter.pop("ts").astype("int64") // 10**9).astype(int)
    users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(n_users)],
            "age": rng.integers(18, 60, size=n_users),
            "gender": rng.choice(["M", "F"], size=n_users),
            "occupation": "other",
            "zip_code": "00000",
        }
    )
    item_table = pd.DataFrame(
        {
            "item_id": items,
            "title": [f"Film {i}" for i in items],
            "year": [1990 + j % 20 for j in range(n_items)],
            "genres": ["Action|Comedy" if j % 2 else "Drama" for j in range(n_items)],
        }
    )
    return build_tables(inter, users, item_table)


def vocabularies(tables: dict[str, pd.DataFrame]) -> tuple[Vocab, Vocab, Genres]:
    inter = tables["interactions"]
    users = Vocab.from_ids(sorted(inter["user_id"].unique()))
    items = Vocab.from_ids(sorted(tables["items"]["item_id"]))
    genres = Genres.from_lists(
        tables["items"].set_index("item_id").reindex(items.ids)["genres"].tolist()
    )
    return users, items, genres
