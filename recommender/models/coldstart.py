"""Profile-only cold start: a ridge regression from user attributes to ALS user vectors.

Trained on the point-in-time profile rows of training users (``get_historical_features``), so
a brand-new user with only age, gender and occupation lands near the users who resemble them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

AGE_BINS = (0, 18, 25, 35, 45, 50, 56, 200)  # MovieLens-1M's age groups
AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
PROFILE_FIELDS = ("age", "gender", "occupation")


def _age_bucket(age: object) -> str:
    if age is None or (isinstance(age, float) and np.isnan(age)) or age is pd.NA:
        return ""
    try:
        value = float(age)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    idx = int(np.searchsorted(AGE_BINS, value, side="right")) - 1
    return AGE_LABELS[min(max(idx, 0), len(AGE_LABELS) - 1)]


def profile_tokens(profile: Mapping[str, object]) -> list[str]:
    """Categorical tokens of a profile, e.g. ``["age=25-34", "gender=F", "occupation=writer"]``."""
    tokens = []
    age = _age_bucket(profile.get("age"))
    if age:
        tokens.append(f"age={age}")
    for name in ("gender", "occupation"):
        value = profile.get(name)
        if isinstance(value, str) and value.strip():
            tokens.append(f"{name}={value.strip().lower()}")
    return tokens


@dataclass
class ProfileModel:
    """Linear map from one-hot profile tokens (plus a bias) to a user vector."""

    tokens: np.ndarray  # vocabulary of tokens, one weight row each (after the bias row)
    weights: np.ndarray  # (1 + len(tokens), factors)

    def __post_init__(self) -> None:
        self._index = {t: i for i, t in enumerate(self.tokens.tolist())}

    @classmethod
    def fit(
        cls, profiles: pd.DataFrame, user_vectors: np.ndarray, l2: float = 10.0
    ) -> ProfileModel:
        """Ridge regression (closed form); ``profiles`` rows align with ``user_vectors`` rows.

        Users with the same profile share one design row: the normal equations are summed per
        distinct profile (a few hundred), not per user (a million)."""
        group = profiles.groupby(list(profiles.columns), dropna=False, sort=False).ngroup()
        group_rows = group.to_numpy()
        first = np.unique(group_rows, return_index=True)[1]  # one user per profile, by group
        rows = [profile_tokens(r) for r in profiles.iloc[first].to_dict("records")]
        vocab = np.array(sorted({t for r in rows for t in r}), dtype=str)
        x = _design(rows, {t: i for i, t in enumerate(vocab.tolist())})  # one row per profile
        counts = np.bincount(group_rows, minlength=len(rows)).astype(np.float64)
        members = csr_matrix(
            (np.ones(len(group_rows)), (group_rows, np.arange(len(group_rows)))),
            shape=(len(rows), len(group_rows)),
        )
        sums = members @ user_vectors.astype(np.float64)  # summed user vectors per profile
        gram = x.T @ (counts[:, None] * x) + l2 * np.eye(x.shape[1])
        gram[0, 0] -= l2  # do not shrink the bias (the mean user)
        weights = np.linalg.solve(gram, x.T @ sums)
        return cls(vocab, weights.astype(np.float32))

    def known_tokens(self, profile: Mapping[str, object]) -> list[str]:
        return [t for t in profile_tokens(profile) if t in self._index]

    def vector(self, profile: Mapping[str, object]) -> np.ndarray:
        """The user vector for one profile (the mean user when nothing is known)."""
        return (_design([profile_tokens(profile)], self._index) @ self.weights)[0].astype(
            np.float32
        )

    def save(self, directory: Path) -> list[str]:
        np.savez(directory / "profile.npz", tokens=self.tokens, weights=self.weights)
        return ["profile.npz"]

    @classmethod
    def load(cls, directory: Path) -> ProfileModel:
        with np.load(directory / "profile.npz", allow_pickle=False) as data:
            return cls(data["tokens"], data["weights"])


def _design(rows: list[list[str]], index: Mapping[str, int]) -> np.ndarray:
    x = np.zeros((len(rows), 1 + len(index)), dtype=np.float64)
    x[:, 0] = 1.0
    for r, tokens in enumerate(rows):
        for t in tokens:
            j = index.get(t)
            if j is not None:
                x[r, 1 + j] = 1.0
    return x
