"""The api_bench section of docs/benchmarks.md: the serving targets of issue 16 (ratios within
one run), then every run's req/s, p50 and p99."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.markdown import replace_section

START, END = "<!-- api-bench:start -->", "<!-- api-bench:end -->"


def _ok(passed: bool) -> str:
    return "met" if passed else "**not met**"


def targets(out: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) of issue 16, from the results of one run."""
    res, c = out["results"], out["meta"]["connections"]
    n = max(out["meta"]["workers"])
    rows: list[tuple[str, str, bool]] = []
    for w in sorted({1, n}):
        r = res[f"w{w}"]
        wc = r[f"warm@{c}"]["rps"] / r[f"constant@{c}"]["rps"]
        wf = r[f"warm@{c}"]["rps"] / r[f"feast@{c}"]["rps"]
        wf1 = r["warm@1"]["rps"] / r["feast@1"]["rps"]
        hog = r[f"cold@{c}+hog"]["rps"] / r[f"cold@{c}"]["rps"]
        hog1 = r["cold@1+hog"]["rps"] / r["cold@1"]["rps"]
        tail = r["cold@1"]["p99_ms"] / max(r["cold@1"]["p50_ms"], 1e-9)
        cw = r[f"cold@{c}"]["rps"] / r[f"warm@{c}"]["rps"]
        p = f"{w} worker{'s' if w > 1 else ''}: "
        rows += [
            (p + f"warm >= 0.6 x constant ({c} conn.)", f"{wc:.2f} x", wc >= 0.6),
            (p + f"warm >= 5 x feast serve ({c} conn.)", f"{wf:.2f} x", wf >= 5),
            (p + "warm >= 5 x feast serve (1 conn.)", f"{wf1:.2f} x", wf1 >= 5),
            (
                p + "warm p99 <= 2 ms (1 conn.)",
                f"{r['warm@1']['p99_ms']:.2f} ms",
                r["warm@1"]["p99_ms"] <= 2,
            ),
            (
                p + "warm p99 <= 5 ms at half of max",
                f"{r['warm_half']['p99_ms']:.2f} ms",
                r["warm_half"]["p99_ms"] <= 5,
            ),
            (p + "cold p99 <= 3 x its p50 (1 conn.)", f"{tail:.2f} x", tail <= 3),
            (p + f"cold with a CPU hog >= 0.7 x without ({c} conn.)", f"{hog:.2f} x", hog >= 0.7),
            (p + "cold with a CPU hog >= 0.7 x without (1 conn.)", f"{hog1:.2f} x", hog1 >= 0.7),
            (p + f"cold >= 0.5 x warm ({c} conn.)", f"{cw:.2f} x", cw >= 0.5),
        ]
    if n > 1:
        scale = res[f"w{n}"][f"warm@{c}"]["rps"] / res["w1"][f"warm@{c}"]["rps"]
        rows.append(
            (f"{n} workers >= 1.3 x one worker, warm ({c} conn.)", f"{scale:.2f} x", scale >= 1.3)
        )
    ev = out["events"]
    if ev["acknowledged"]:
        rows.append(
            (
                "events: acknowledged = stored",
                f"{ev['acknowledged']} acked, {ev['stored']} stored",
                ev["lost"] == 0,
            )
        )
    return rows


def write_markdown(out: dict[str, Any], path: Path) -> None:
    m = out["meta"]
    target_rows = "\n".join(f"| {t} | {v} | {_ok(p)} |" for t, v, p in targets(out))
    runs = []
    for config, r in out["results"].items():
        for name, v in r.items():
            if isinstance(v, dict) and "rps" in v:
                runs.append(
                    f"| {config[1:]} | {name} | {v['rps']:.0f} | {v['p50_ms']:.2f} | "
                    f"{v['p99_ms']:.2f} | {v['non_2xx'] + v['socket_errors']} |"
                )
    prof = out["results"]["w1"].get("profile_warm") or []
    prof_block = (
        "\npy-spy on the warm path under load, 1 worker (samples holding the GIL, by innermost "
        "frame):\n\n| frame | % |\n|---|---|\n"
        + "\n".join(f"| `{frame}` | {share} |" for frame, share in prof)
        + "\n"
        if prof
        else ""
    )
    rows = "\n".join(runs)
    section = f"""{START}
## API serving paths beside Feast's feature server (issue 16)

Command: `{m["command"]}` — {m["wrk"]}. Machine: {m["machine"]}, shared with other sessions'
work (noisy: compare ratios within the run); measured {m["date"]}. Catalog:
{m["catalog"]["users"]} users x {m["catalog"]["items"]} items; index: `{m["index"]}`.

| target (issue 16, same run) | measured | |
|---|---|---|
{target_rows}

| workers | run | req/s | p50 ms | p99 ms | errors |
|---|---|---|---|---|---|
{rows}

* `name@C`: C connections (wrk, one thread); `+hog`: with `python3 -c "while True: pass"`
  running beside the server; `warm_half`: warm paced at half of its maximum.
* constant: `GET /constant`, constant JSON from the same app, gateway and server.
* warm: `GET /recommendations?user_id=<known>&k=10` (the compiled route, one Redis HMGET).
* cold: `POST /recommendations`, a new user with three recent items (fold-in, ANN search).
* feast: `feast serve` on the same repository and Redis (same number of workers),
  `POST /get-online-features` of the live list service for the same users.
* events_event / events_batch: `POST /events` (1 event) and `POST /events/batch` (10 events).
{prof_block}{END}"""
    replace_section(path, START, END, section)
