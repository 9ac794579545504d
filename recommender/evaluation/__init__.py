"""Offline evaluation: split protocols, ranking metrics, the model runner, tuning, the served-hybrid
replay and the report files. Pure, except ``report`` (writes files)."""
