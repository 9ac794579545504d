"""The two-stage model as a part of a model bundle: the ranker plus the retrievers' own
artifacts (EASE weights, item-kNN similarities), saved under ``<version>/ranking/`` with
npz/LightGBM text files (no pickle). ALS, popularity and the item vocabulary are the bundle's.

:func:`fit_two_stage` trains it (the training job: rows from Feast's offline store through a
:class:`~recommender.ranking.dataset.FeastReader`); :func:`rank_users` is the second stage for
a block of users, used by the nightly scoring and by the API's real-time path alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix, load_npz, save_npz

from recommender.data.vocab import Vocab, user_item_matrix
from recommender.errors import CorruptArtifact
from recommender.featurestore.names import ITEM_STATS, feature_column
from recommender.models import ALSModel, EASEModel
from recommender.ranking.candidates import candidates
from recommender.ranking.dataset import FeatureReader
from recommender.ranking.features import Genres, user_genre_shares
from recommender.ranking.onlinerows import ITEM_COLUMNS, online_matrix
from recommender.ranking.ranker import Ranker
from recommender.ranking.retrievers import History, NeighbourIndex, Retriever
from recommender.ranking.twostage import (
    Block,
    RankedLists,
    RankingConfig,
    assemble,
    fit_item_item,
    fit_ranker,
    rank_block,
    training_rows,
)

log = logging.getLogger(__name__)
SUBDIR = "ranking"


@dataclass
class TwoStageModel:
    """The ranker and the retriever artifacts the bundle does not already hold."""

    ranker: Ranker
    ease: EASEModel | None
    similarity: csr_matrix
    config: RankingConfig

    def retrievers(
        self,
        als: ALSModel,
        popularity: np.ndarray,
        trending: np.ndarray,
        num_threads: int = 1,
        index: NeighbourIndex | None = None,
    ) -> list[Retriever]:
        """In the ranker's order (:func:`~recommender.ranking.twostage.assemble`)."""
        return assemble(als, self.ease, self.similarity, trending, popularity, num_threads, index)

    def save(self, directory: Path) -> list[str]:
        """Write into ``directory / "ranking"``; return the file names relative to
        ``directory`` (for the bundle manifest's checksums)."""
        sub = directory / SUBDIR
        sub.mkdir(parents=True, exist_ok=True)
        files = self.ranker.save(sub)
        save_npz(sub / "similarity.npz", self.similarity, compressed=False)
        files.append("similarity.npz")
        if self.ease is not None:
            files += self.ease.save(sub)
        return [f"{SUBDIR}/{name}" for name in files]

    @classmethod
    def load(cls, directory: Path) -> TwoStageModel | None:
        """The model saved in ``directory / "ranking"``, or None when the version has none."""
        sub = directory / SUBDIR
        if not Ranker.exists(sub):
            return None
        ranker = Ranker.load(sub)
        try:
            similarity = load_npz(sub / "similarity.npz").tocsr()
            ease = EASEModel.load(sub) if (sub / "ease.npz").exists() else None
        except (OSError, ValueError) as exc:
            raise CorruptArtifact(f"retrievers in {sub} cannot be loaded: {exc}") from exc
        return cls(ranker, ease, similarity, RankingConfig(depth=ranker.manifest.depth))


def fit_two_stage(
    interactions: pd.DataFrame,
    items: Vocab,
    reader: FeatureReader,
    genres: Genres,
    cutoffs: Sequence[pd.Timestamp],
    label_days: float,
    config: RankingConfig | None = None,
) -> TwoStageModel:
    """Train the ranker on rows from every cut-off (retrievers refitted before each), then fit
    the item-item retrievers on all ``interactions`` for serving (ALS is the bundle's).

    The retrievers' user rows are the users of ``interactions`` only (the training job's
    sample: at 1M users a model over every user's rows would cost a full ALS fit each cut-off
    for nothing)."""
    config = config or RankingConfig()
    users = Vocab.from_ids(sorted(interactions["user_id"].astype(str).unique()))
    rows = training_rows(interactions, cutoffs, label_days, users, items, reader, genres, config)
    ranker = fit_ranker(rows, config, label_days)
    ease, knn = fit_item_item(user_item_matrix(interactions, users, items), config)
    return TwoStageModel(ranker, ease, knn.similarity, config)


def item_trending(item_values: np.ndarray) -> np.ndarray:
    """``item_stats.interactions_30d`` per item row (0 when unknown): the trending retriever
    reads the same in-memory item features the ranker does (``item_values``:
    :func:`~recommender.ranking.onlinerows.entity_values` of the model's items)."""
    column = ITEM_COLUMNS.index(feature_column(ITEM_STATS, "interactions_30d"))
    return np.nan_to_num(item_values[:, column]).astype(np.float32)


@dataclass(frozen=True)
class RankingCatalog:
    """What ranking reads that is the same for every user: the two-stage model, the bundle's
    ALS and popularity, the items' genres and online features (``item_values``: one row per
    item row of the model), and the retrievers assembled over them (built once: serving keeps
    them with the item features, a nightly chunk builds them per chunk)."""

    model: TwoStageModel
    als: ALSModel
    popularity: np.ndarray
    genres: Genres
    item_values: np.ndarray
    retrievers: Sequence[Retriever] | None = None

    def assembled(self, num_threads: int = 1) -> RankingCatalog:
        """This catalog with its retrievers built (``num_threads``: ALS's top-k threads; 1 for
        a request or a helper process, 0 for every core)."""
        if self.retrievers is not None:
            return self
        trending = item_trending(self.item_values)
        built = self.model.retrievers(self.als, self.popularity, trending, num_threads)
        return replace(self, retrievers=built)


@dataclass(frozen=True)
class UserBlock:
    """The users ranked together: their histories (training rows and recent items), ids,
    online features (``user_values``: one row per user) and the time they are ranked at."""

    history: History
    user_ids: Sequence[str]
    user_values: np.ndarray
    as_of: pd.Timestamp

    def block(self, start: int, stop: int) -> UserBlock:
        return UserBlock(
            self.history.block(start, stop),
            list(self.user_ids[start:stop]),
            self.user_values[start:stop],
            self.as_of,
        )


def rank_users(
    catalog: RankingCatalog, users: UserBlock, n: int, with_provenance: bool = True
) -> tuple[RankedLists, Block]:
    """Retrieve and rank for a block of users from online-shaped features
    (:func:`~recommender.ranking.onlinerows.entity_values` or
    :func:`~recommender.ranking.onlinerows.latest_values`).

    Returns the top-``n`` per user (item rows, ranker scores, provenance) and the candidate
    block (for ``explain``: :meth:`Ranker.contributions` on ``block.x``). Rules and filters
    apply after this, on the returned order. The catalog's retrievers are assembled here
    (on the calling thread) when it does not carry them.
    """
    catalog = catalog.assembled()
    assert catalog.retrievers is not None
    model, history = catalog.model, users.history
    cands = candidates(
        catalog.retrievers, history, model.ranker.manifest.depth, model.config.block_users
    )
    shares = user_genre_shares(history.matrix, catalog.genres)
    x = online_matrix(
        cands, users.user_values, catalog.item_values, users.as_of, shares, catalog.genres
    )
    block = Block(np.asarray(list(users.user_ids), dtype=str), cands, x)
    return rank_block(model.ranker, block, n, with_provenance), block


def default_cutoffs(
    interactions: pd.DataFrame,
    n: int = 3,
    label_days: float = 14.0,
    last_quantile: float = 0.9,
    quantile_step: float = 0.1,
) -> list[pd.Timestamp]:
    """``n`` cut-offs at least ``label_days`` apart: the last one ``label_days`` before the
    newest interaction (so every label window is complete) or at the ``last_quantile`` of the
    interactions' times, whichever is earlier, and each earlier one ``label_days`` before the
    next or at its own quantile (``quantile_step`` lower each), whichever is earlier.

    With steady activity over fewer than ten label windows the spacing decides (the last
    weeks); with a thin tail it is the quantiles: ML-1M's last two years hold 3% of its
    ratings, and cut-offs in them gave the ranker a third of the queries the busy months
    give.
    """
    ts = interactions["event_timestamp"]
    step = pd.Timedelta(days=label_days)
    cut = min(pd.Timestamp(ts.max()) - step, pd.Timestamp(ts.quantile(last_quantile)))
    out = [cut]
    for j in range(1, n):
        quantile = max(last_quantile - j * quantile_step, 0.0)
        cut = min(cut - step, pd.Timestamp(ts.quantile(quantile)))
        out.append(cut)
    return [c.floor("D") for c in reversed(out)]


def history_block(
    user_items: csr_matrix, user_rows: np.ndarray, recent: csr_matrix | None = None
) -> History:
    """A nightly chunk's history: the users' training rows (``user_rows``, model rows) and
    their recent items (``recent_matrix``; the training rows when not given)."""
    matrix = user_items[user_rows].tocsr()
    return History(np.asarray(user_rows), matrix, recent if recent is not None else matrix)


def ranked_top_n(
    catalog: RankingCatalog,
    users: UserBlock,
    n: int,
    block_users: int = 512,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nightly's ranked lists for a chunk, in :func:`recommender.models.topn.factor_top_n`'s
    shape (item rows int32 padded -1, scores float32 padded -inf) plus each item's provenance
    as a bit mask of the ranker's retrievers (uint8, bit j: ``manifest.retrievers[j]``; 0 for
    padding); ``block_users`` at a time (the candidate features are the memory that grows);
    ``num_threads``: ALS's top-k threads (0: every core; 1 in a helper process of its own)."""
    total = len(users.history)
    ids = np.full((total, n), -1, dtype=np.int32)
    scores = np.full((total, n), -np.inf, dtype=np.float32)
    sources = np.zeros((total, n), dtype=np.uint8)
    catalog = catalog.assembled(num_threads)
    for start in range(0, total, block_users):
        stop = min(start + block_users, total)
        ranked, block = rank_users(catalog, users.block(start, stop), n, with_provenance=False)
        ids[start:stop] = ranked.item_rows
        scores[start:stop] = ranked.scores
        sources[start:stop] = source_masks(block.cands.proposed, ranked.pairs)
    return ids, scores, sources


def source_masks(proposed: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Per listed pair (``pairs``: candidate indices, -1 padded), the bit mask of the
    retrievers that proposed it (``proposed``: (candidates, retrievers) bool)."""
    bits = (proposed.astype(np.uint8) << np.arange(proposed.shape[1], dtype=np.uint8)).sum(
        axis=1, dtype=np.uint8
    )
    return np.where(pairs >= 0, bits[np.maximum(pairs, 0)] if len(bits) else 0, 0).astype(np.uint8)


def source_names(mask: int, names: Sequence[str]) -> list[str]:
    """The names of a :func:`source_masks` mask's bits, in ``names``' order."""
    return [name for j, name in enumerate(names) if mask >> j & 1]
