"""HTTP API: warm path from Redis (precomputed lists), cold path through FAISS."""

import recommender  # noqa: F401  (first: it makes the Feast import fast)
