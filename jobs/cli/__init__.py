"""The ``reco`` command line (``reco = "jobs.cli:app"``): one module per sub-app, all added
explicitly in :mod:`jobs.cli.main`. Thin: each command parses, calls a job, prints."""

from jobs.cli.main import app

__all__ = ["app"]
