"""Small matrices with a provable answer, shared by the model and artifact tests."""

import numpy as np
from scipy.sparse import csr_matrix

BLOCKS, SIZE = 4, 10


def checkerboard() -> csr_matrix:
    """Block b's users like block b's items, each user missing exactly one of them."""
    dense = np.zeros((BLOCKS * SIZE, BLOCKS * SIZE), dtype=np.float32)
    for b in range(BLOCKS):
        dense[b * SIZE : (b + 1) * SIZE, b * SIZE : (b + 1) * SIZE] = 1.0
    for u in range(BLOCKS * SIZE):
        dense[u, (u // SIZE) * SIZE + u % SIZE] = 0.0
    return csr_matrix(dense)
