"""The api_bench section of docs/benchmarks.md: results against the serving targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START, END = "<!-- api-bench:start -->", "<!-- api-bench:end -->"


def _ok(passed: bool) -> str:
    return "met" if passed else "**not met**"


def write_markdown(out: dict[str, Any], path: Path) -> None:
    r, m, ratios, ev = out["results"], out["meta"], out["ratios"], out["events"]
    rows = "\n".join(
        f"| {name} | {r[name]['rps']:.0f} | {r[name]['p50_ms']:.2f} | {r[name]['p90_ms']:.2f} "
        f"| {r[name]['p99_ms']:.2f} | {r[name]['non_2xx']} |"
        for name in r
    )
    targets = [
        (
            "warm p99 at half of max throughput <= 1 ms",
            f"{r['warm_half']['p99_ms']:.2f} ms",
            r["warm_half"]["p99_ms"] <= 1.0,
        ),
        (
            "warm throughput >= 0.8 x constant",
            f"{ratios['warm_over_constant_rps']:.2f} x",
            ratios["warm_over_constant_rps"] >= 0.8,
        ),
        (
            "cold p99 (50k items) <= 5 ms, at half of its max",
            f"{r['cold_half']['p99_ms']:.2f} ms",
            r["cold_half"]["p99_ms"] <= 5.0,
        ),
        (
            "cold throughput >= 0.5 x warm",
            f"{ratios['cold_over_warm_rps']:.2f} x",
            ratios["cold_over_warm_rps"] >= 0.5,
        ),
        (
            "events: acknowledged = stored",
            f"{ev['acknowledged']} acked, {ev['stored']} stored",
            ev["lost"] == 0,
        ),
        (
            "ANN index (HNSW here) recall@100 vs exact >= 0.95",
            f"{m['index'].get('recall_at_100')}",
            float(m["index"].get("recall_at_100", 0)) >= 0.95,
        ),
    ]
    target_rows = "\n".join(f"| {t} | {v} | {_ok(p)} |" for t, v, p in targets)
    prof = "\n".join(f"| `{frame}` | {share} |" for frame, share in out.get("profile_warm") or [])
    prof_block = (
        f"\npy-spy on the warm path under load (samples holding the GIL, by innermost frame):\n\n"
        f"| frame | % |\n|---|---|\n{prof}\n"
        if prof
        else ""
    )
    section = f"""{START}
## API serving paths (synthetic catalog, loopback, wrk)

Command: `{m["command"]}` — {m["wrk"]}. Machine: {m["machine"]}, shared and noisy;
measured {m["date"]}. Catalog: {m["catalog"]["users"]} users x {m["catalog"]["items"]} items;
index: `{m["index"]}`.

| target | measured | |
|---|---|---|
{target_rows}

| run | req/s | p50 ms | p90 ms | p99 ms | non-2xx |
|---|---|---|---|---|---|
{rows}

* constant: `GET /constant`, a constant JSON body from the same app and middleware.
* warm: `GET /recommendations?user_id=<known>&k=10`: one Redis HMGET of the user's Feast hash
  (list, recent events, profile), rules, JSON.
* cold: `POST /recommendations` with a new user id and three recent items: the same Redis
  read, ALS fold-in, FAISS search over the catalog, rules.
* `*_half`: the same requests paced at half of that path's maximum throughput.
* events_event / events_batch: `POST /events` (1 event) and `POST /events/batch` (10 events),
  each fsync'ed to the event log before the 202, then pushed through Feast.
{prof_block}{END}"""
    replace_section(path, START, END, section)


def replace_section(path: Path, start: str, end: str, section: str) -> None:
    """Put ``section`` (which starts with ``start`` and ends with ``end``) into the file,
    replacing only the previous version of that section and keeping every other note."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
