"""The runs as named steps over the stages: ingest, train, the nightly, evaluation, promotion
and rollback, catalog operations. ``jobs/`` is the CLI and cron shell over these."""
