"""The nightly-bench section of docs/benchmarks.md: per step, seconds and peak RSS at every size,
the growth from the smallest to the largest size, and the issue-14 targets at the largest."""

from __future__ import annotations

from typing import Any

STEPS = (
    ("data", "`reco data synthetic`"),
    ("feast_apply", "`feast apply`"),
    ("train", "`reco train` (hold-out, ALS, profile model, index)"),
    ("night_1", "first `reco nightly` (full backfill of every view)"),
    ("events", "one day of new events written to the event log"),
    ("night_2", "later `reco nightly` (that day, incremental)"),
    ("feast_materialize_incremental", "`feast materialize-incremental` (CLI)"),
    ("feast_materialize_full", "`feast materialize` of every view from scratch (CLI)"),
    ("api_start", "`reco serve` until `/ready` (RSS at ready)"),
)
# step -> (seconds, MB) at 1M users (issue 14)
TARGETS = {
    "data": (180, 4096),
    "train": (480, 6144),
    "night_1": (900, 8192),
    "night_2": (600, 6144),
    "feast_materialize_incremental": (600, 6144),
    "feast_materialize_full": (900, 8192),
    "api_start": (30, 3072),
}


def _cell(step: dict[str, Any] | None) -> str:
    if not step:
        return "-"
    mb = step.get("peak_rss_mb", 0)
    child = step.get("manifest", {}).get("peak_rss_mb", {}).get("largest_child")
    extra = f" (child {child:,.0f})" if child else ""
    return f"{step['seconds']:,.0f} s / {mb:,} MB{extra}" if mb else f"{step['seconds']:,.0f} s"


def _growth(first: dict[str, Any] | None, last: dict[str, Any] | None) -> str:
    if not first or not last or not first.get("seconds"):
        return "-"
    t = last["seconds"] / max(first["seconds"], 0.1)
    m = last.get("peak_rss_mb", 0) / max(first.get("peak_rss_mb", 0), 1)
    return f"{t:.1f}x / {m:.1f}x" if last.get("peak_rss_mb") else f"{t:.1f}x"


def _verdict(name: str, step: dict[str, Any] | None) -> str:
    if name not in TARGETS or not step:
        return ""
    seconds, mb = TARGETS[name]
    ok = step["seconds"] <= seconds and step.get("peak_rss_mb", 0) <= mb
    child = step.get("manifest", {}).get("peak_rss_mb", {}).get("largest_child", 0)
    ok = ok and child <= mb
    return f"<= {seconds / 60:g} min, <= {mb / 1024:g} GB: " + ("met" if ok else "**not met**")


def _night_rows(sizes: dict[str, Any]) -> list[str]:
    rows = []
    for users, steps in sorted(sizes.items(), key=lambda kv: int(kv[0])):
        for night in ("night_1", "night_2"):
            n = steps.get(night)
            if not n:
                continue
            d = n["manifest"]["durations_s"]
            rate = (
                n["manifest"]["users_written"] / d["encode_write_online"]
                if d.get("encode_write_online")
                else 0
            )
            ref = steps.get("redis_benchmark_set_per_s") or 0
            ratio = f"{rate / ref:.2f}x" if ref else "-"
            phases = " | ".join(
                f"{d.get(k, 0):.0f}"
                for k in (
                    "events",
                    "load",
                    "score",
                    "encode_write_online",
                    "materialize",
                    "publish",
                )
            )
            rows.append(f"| {int(users):,} | {night[-1]} | {phases} | {rate:,.0f} ({ratio}) |")
    return rows


def markdown(out: dict[str, Any]) -> str:
    m, sizes = out["meta"], out["sizes"]
    names = sorted(sizes, key=int)  # --merge adds sizes in the order they ran
    head = " | ".join(f"{int(u):,} users" for u in names)
    lines = [
        "## The whole night at scale: every step, seconds and peak RSS (issue 14)",
        "",
        f"Command: `{m['command']}` (with `--merge`: one size per invocation, the last"
        f" run {m['date']}), {m['machine']} (shared, noisy). Each size:",
        f"`reco data synthetic` with {m['items']:,} items and {m['per_user']} interactions per",
        f"user over 180 days; scoring engine `{m['engine']}`; a redis-server of its own. Each",
        "cell: wall seconds / peak RSS of the step's largest process (`os.wait4`; a night's",
        "largest child process, the lock keeper or a writer, in brackets, from its manifest).",
        "Growth: largest size over smallest.",
        "",
        f"| step | {head} | growth (time / memory) | target at 1M |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    failed = {u: s["failed"] for u, s in sizes.items() if "failed" in s}
    for key, label in STEPS:
        cells = " | ".join(_cell(sizes[u].get(key)) for u in names)
        growth = _growth(sizes[names[0]].get(key), sizes[names[-1]].get(key))
        lines.append(
            f"| {label} | {cells} | {growth} | {_verdict(key, sizes[names[-1]].get(key))} |"
        )
    lines += [
        "",
        "Phases of each night (seconds; `score` and the list writes overlap) and the list-write",
        "rate against `redis-benchmark -t set -P 64` on the same server in the same run:",
        "",
        "| users | night | events | load | score | write | materialize | publish "
        "| list rows/s (x redis-benchmark) |",
        "|---|---|---|---|---|---|---|---|---|",
        *_night_rows(sizes),
        "",
        "Redis memory after both nights (two list slots + features): "
        + ", ".join(
            f"{int(u):,} users {s.get('redis_used_mb', '-')} MB"
            for u, s in sorted(sizes.items(), key=lambda kv: int(kv[0]))
        ),
    ]
    for users, error in failed.items():
        lines += ["", f"**{int(users):,} users failed:** `{error.splitlines()[0][:300]}`"]
    return "\n".join(lines)
