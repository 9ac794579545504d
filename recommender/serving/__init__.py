"""The serving paths without I/O: the hybrid decision (precomputed | realtime | popular), the
ranking paths and the one rule/filter engine. Pure."""
