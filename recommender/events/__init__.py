"""User events: what ``POST /events`` accepts (checks, records, recent-items merge; pure) and the
durable append-only event log (JSON-lines segments; file I/O)."""
