"""Small synthetic data with a provable answer: two taste groups that never mix.

Group ``a`` users (male engineers, 25-34) only touch ``a*`` items; group ``b`` users (female
artists, 45-49) only touch ``b*`` items. Any sensible model must recommend ``a*`` items to an
``a`` user, to a new user who liked ``a*`` items, and to a new male engineer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUPS = {
    "a": {"gender": "M", "occupation": "engineer", "age": (25, 34), "genre": "Action"},
    "b": {"gender": "F", "occupation": "artist", "age": (45, 49), "genre": "Drama"},
}


def synthetic_tables(
    rng: np.random.Generator,
    users_per_group: int = 30,
    items_per_group: int = 20,
    per_user: int = 12,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    start = pd.Timestamp("2024-01-01", tz="UTC")
    inter, users, items = [], [], []
    for g, spec in GROUPS.items():
        group_items = [f"{g}{j}" for j in range(items_per_group)]
        # a popularity gradient inside the group, so "popular" has a defined order
        weights = np.linspace(2.0, 1.0, items_per_group)
        weights /= weights.sum()
        for j, item in enumerate(group_items):
            items.append(
                {
                    "item_id": item,
                    "title": f"{spec['genre']} film {g.upper()}{j}",
                    "year": 2000 + j,
                    # every fourth film is also a comedy: a second, shared genre for filters
                    "genres": spec["genre"] + ("|Comedy" if j % 4 == 0 else ""),
                }
            )
        for u in range(users_per_group):
            uid = f"{g}_user{u}"
            lo, hi = spec["age"]
            users.append(
                {
                    "user_id": uid,
                    "age": int(rng.integers(lo, hi + 1)),
                    "gender": spec["gender"],
                    "occupation": spec["occupation"],
                    "zip_code": "00000",
                }
            )
            chosen = rng.choice(group_items, size=per_user, replace=False, p=weights)
            days = np.sort(rng.uniform(0, 60, size=per_user))
            for item, day in zip(chosen, days, strict=True):
                inter.append(
                    {
                        "user_id": uid,
                        "item_id": item,
                        "rating": int(rng.integers(3, 6)),
                        "timestamp": int((start + pd.Timedelta(days=float(day))).timestamp()),
                    }
                )
    return pd.DataFrame(inter), pd.DataFrame(users), pd.DataFrame(items)
