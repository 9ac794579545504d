"""Raw files -> canonical tables (interactions, users, items), point-in-time snapshots, id
vocabularies, synthetic data. Pure, except ``tables``/``lists``/``movielens`` (parquet, wheels)."""
