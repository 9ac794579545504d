"""CSR arrays read directly: each stored entry's key, and the entries of chosen rows. A
request's few rows paid more in scipy's constructors and checks than in the arithmetic, so
the two-stage path's sparse steps gather from ``indptr`` / ``indices`` / ``data`` instead.
Pure."""

from __future__ import annotations

import numpy as np


def entry_keys(indptr: np.ndarray, indices: np.ndarray, n_cols: int) -> np.ndarray:
    """``row * n_cols + column`` of each stored entry of CSR arrays (ascending when the
    matrix is canonical)."""
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    return rows * n_cols + indices


def row_entries(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stored entries of ``rows`` (a row may come more than once), laid end to end:
    ``owner[e]`` is the position in ``rows`` an entry belongs to, ``entry[e]`` its index in
    the CSR ``indices`` / ``data`` arrays.

    Example: indptr ``[0, 2, 3]``, rows ``[1, 0]`` -> owner ``[0, 1, 1]``, entry ``[2, 0, 1]``.
    """
    start = indptr[rows].astype(np.int64)
    lengths = indptr[np.asarray(rows) + 1].astype(np.int64) - start
    owner = np.repeat(np.arange(len(lengths)), lengths)
    entry = np.arange(len(owner)) - np.repeat(np.cumsum(lengths) - lengths, lengths) + start[owner]
    return owner, entry
