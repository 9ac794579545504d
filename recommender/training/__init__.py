"""Fit everything serving needs into a ``ModelBundle``: ALS, FAISS index, popularity, cold start;
versioned artifacts (npz/parquet/FAISS + JSON manifest) and the registry journal. Does file I/O."""
