"""Batch jobs and the ``reco`` command line: ingest, train, nightly precompute, serve."""
