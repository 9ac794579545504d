"""Top-N of scores, every model's last step: from a dense block (:func:`top_n_excluding`,
:func:`top_k_rows`), from user and item factors in implicit's C++ ``topk``
(:func:`factor_top_n`, the nightly's ALS lists), and from the stored entries of a sparse
block (:func:`sparse_top_n`, :func:`keyed_top_n`: the item-item retrievers). Rows are
padded with -1 / ``-inf``; seen items are excluded. Pure.
"""

from __future__ import annotations

import numpy as np
from implicit.cpu.topk import topk
from scipy.sparse import csr_matrix
from threadpoolctl import ThreadpoolController

from recommender.models.csr_arrays import entry_keys

FILTERED = np.float32(-0.5 * np.finfo(np.float32).max)  # implicit's filtered / exhausted
_THREADPOOLS: list[ThreadpoolController] = []  # found once: a search per call cost 1.2 ms


def _threadpools() -> ThreadpoolController:
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0]


def top_n_excluding(scores: np.ndarray, seen: csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``n`` of a dense score block after masking ``seen`` entries; ties go to
    the lower item index.

    Example: scores ``[[3, 2, 1]]`` with item 0 seen and ``n=2`` give ids ``[[1, 2]]``.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    n_eff = min(n, scores.shape[1])
    if n_eff == 0:
        ids, top = np.zeros((len(scores), 0), np.int64), np.zeros((len(scores), 0), np.float32)
    else:
        ids, top = top_k_rows(scores, n_eff)
    ids = np.where(np.isfinite(top), ids, -1)
    if n_eff < n:
        pad = n - n_eff
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, pad)), constant_values=-np.inf)
    return ids, top


_BLOCK = 64  # items per block of the threshold pass


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest values and their columns, largest first, ties by lower column
    (``0 < k <= columns``).

    A full ``argpartition`` of every row was three quarters of the two-stage nightly at 50k
    items. Instead, a per-row threshold that at least ``k`` values reach, and a sort of only
    the values at or above it: on wide rows the k-th largest maximum of the row's blocks of
    64 columns (only the blocks whose maximum reaches it are looked into), on narrow ones the
    k-th largest value itself (``np.partition``). Rows where too many values tie at the
    threshold, or with fewer than ``k`` finite values, take a full stable sort."""
    n_rows, n_cols = scores.shape
    ids = np.zeros((n_rows, k), dtype=np.int64)
    top = np.zeros((n_rows, k), dtype=np.float32)
    if not n_rows:
        return ids, top
    n_blocks = -(-n_cols // _BLOCK)
    if n_blocks >= 4 * k:
        maxima = np.maximum.reduceat(scores, np.arange(0, n_cols, _BLOCK), axis=1)
        threshold = np.partition(maxima, n_blocks - k, axis=1)[:, n_blocks - k]
        rows, blocks = np.nonzero(maxima >= threshold[:, None])
        cols = blocks[:, None] * _BLOCK + np.arange(_BLOCK)
        inside = cols < n_cols
        values = np.where(inside, scores[rows[:, None], np.minimum(cols, n_cols - 1)], -np.inf)
        hit = inside & (values >= threshold[rows][:, None])
        rows, cols = np.broadcast_to(rows[:, None], cols.shape)[hit], cols[hit]
        values = values[hit]
    else:
        threshold = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]
        rows, cols = np.nonzero(scores >= threshold[:, None])
        values = scores[rows, cols]
    counts = np.bincount(rows, minlength=n_rows)
    heavy = (counts > max(16 * k, 4096)) | ~np.isfinite(threshold)
    keep = ~heavy[rows]
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.lexsort((cols, -values, rows))  # by row, then value down, then column
    rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]
    first = rank < k
    ids[rows[first], rank[first]] = cols[first]
    top[rows[first], rank[first]] = values[first]
    if heavy.any():  # rows of ties, or with too few finite values: a stable full sort
        sub = scores[heavy]
        order = np.argsort(-sub, axis=1, kind="stable")[:, :k]
        ids[heavy], top[heavy] = order, np.take_along_axis(sub, order, axis=1)
    return ids, top


def factor_top_n(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    seen: csr_matrix,
    n: int,
    batch_size: int = 1024,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` item rows and scores (inner product) for each row of ``user_factors``,
    excluding the items in the same row of ``seen``; rows with fewer than ``n`` unseen items
    are padded with ``-1`` / ``-inf``. At most ``batch_size`` users are scored at once.

    ``num_threads=0`` uses every core; BLAS stays single-threaded under implicit's threads.
    """
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    if seen.shape != (n_users, n_items):
        raise ValueError(f"seen is {seen.shape}, expected {(n_users, n_items)}")
    ids = np.full((n_users, n), -1, dtype=np.int32)
    scores = np.full((n_users, n), -np.inf, dtype=np.float32)
    k = min(n, n_items)
    if n_users == 0 or k == 0:
        return ids, scores
    items = np.ascontiguousarray(item_factors, dtype=np.float32)
    with _threadpools().limit(limits=1, user_api="blas"):
        for start in range(0, n_users, batch_size):
            stop = min(start + batch_size, n_users)
            query = np.ascontiguousarray(user_factors[start:stop], dtype=np.float32)
            got_ids, got_scores = topk(
                items, query, k, filter_query_items=seen[start:stop], num_threads=num_threads
            )
            ids[start:stop, :k] = got_ids
            scores[start:stop, :k] = got_scores
    bad = (scores <= FILTERED) | ~np.isfinite(scores) | (ids < 0)
    ids[bad], scores[bad] = -1, -np.inf
    return ids, scores


def dense_top_n(
    user_factors: np.ndarray, item_factors: np.ndarray, seen: csr_matrix, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The same lists from the full score matrix in one go (the reference for tests; only
    for small data). Ties are broken by the lower item row."""
    scores = user_factors.astype(np.float64) @ item_factors.astype(np.float64).T
    scores[seen.nonzero()] = -np.inf
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores))
    order = order[:, :n]
    top = np.take_along_axis(scores, order, axis=1)
    ids = np.where(np.isfinite(top), order, -1).astype(np.int32)
    ids = np.pad(ids, ((0, 0), (0, max(0, n - ids.shape[1]))), constant_values=-1)
    top = np.pad(top, ((0, 0), (0, max(0, n - top.shape[1]))), constant_values=-np.inf)
    return ids, top.astype(np.float32)


def sparse_top_n(scores: csr_matrix, seen: csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``n`` of the *stored* entries of a sparse block (an item-item product:
    an item no source item reaches is not a candidate), ``seen`` entries excluded; ties go to
    the lower item index, like :func:`top_n_excluding` on the dense block.

    Example: ``[[0, 3, 1, 2]]`` stored at items 1-3, item 3 seen, ``n=3``: ids ``[[1, 2, -1]]``.
    """
    n_rows, n_cols = scores.shape
    if not (isinstance(scores, csr_matrix) and scores.dtype == np.float32):
        scores = csr_matrix(scores, dtype=np.float32)
    scores.sum_duplicates()  # canonical: sorted columns, one entry each (sorts in place)
    keys = entry_keys(scores.indptr, scores.indices, n_cols)
    seen_keys = None
    if seen.nnz:
        seen = csr_matrix(seen)
        seen.sum_duplicates()
        seen_keys = entry_keys(seen.indptr, seen.indices, n_cols)
    return keyed_top_n(keys, scores.data, n_rows, n_cols, n, seen_keys)


def keyed_top_n(
    keys: np.ndarray,
    values: np.ndarray,
    n_rows: int,
    n_cols: int,
    n: int,
    seen_keys: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sparse_top_n` of a block given as its stored entries: ``keys`` (``row * n_cols
    + column``, ascending, distinct) and their ``values``; ``seen_keys`` (the same keys of the
    seen entries, ascending) are excluded.

    Only the stored entries are sorted: each row's entries are laid side by side in a block
    as wide as the longest row (-inf padded), and :func:`top_k_rows` picks from that."""
    ids = np.full((n_rows, n), -1, dtype=np.int64)
    top = np.full((n_rows, n), -np.inf, dtype=np.float32)
    keep = np.isfinite(values)
    if seen_keys is not None and len(seen_keys):  # sorted: a lookup, not np.isin's table
        at = np.minimum(np.searchsorted(seen_keys, keys), len(seen_keys) - 1)
        keep &= seen_keys[at] != keys
    kept = keys[keep]
    rows, cols, values = kept // n_cols, kept % n_cols, np.asarray(values[keep], np.float32)
    if n_rows == 1:  # a request: one sort of its few hundred entries, no block to lay out
        order = np.lexsort((cols, -values))[:n]
        ids[0, : len(order)], top[0, : len(order)] = cols[order], values[order]
        return ids, top
    counts = np.bincount(rows, minlength=n_rows)
    width = int(counts.max()) if len(rows) else 0
    if width == 0 or n == 0:
        return ids, top
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    block = np.full((n_rows, width), -np.inf, dtype=np.float32)
    block[rows, pos] = values
    where = np.zeros((n_rows, width), dtype=np.int64)
    where[rows, pos] = cols
    k = min(n, width)
    at, got = top_k_rows(block, k)
    ids[:, :k] = np.where(np.isfinite(got), np.take_along_axis(where, at, axis=1), -1)
    top[:, :k] = got
    return ids, top
