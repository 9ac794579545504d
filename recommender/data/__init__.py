"""Canonical data tables: interactions, users, items (plus derived feature tables)."""
