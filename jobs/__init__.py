"""Batch jobs and the ``reco`` command line: ingest, train, nightly precompute, serve."""

import recommender  # noqa: F401  (first: it makes the Feast import fast)
