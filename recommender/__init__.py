"""Recommender library: data tables, features, models, index, cold start, metrics.

Pure functions over DataFrames and CSR matrices; file, Redis and Feast I/O lives in
``recommender.featurestore.repo``, ``recommender.training.artifacts`` and the ``jobs``/``api`` packages.
"""

__version__ = "0.1.0"
