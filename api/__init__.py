"""HTTP API: warm path from Redis (precomputed lists), cold path through FAISS."""
