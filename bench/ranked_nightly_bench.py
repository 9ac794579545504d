"""The ranked nightly beside the ALS-only nightly on the same synthetic catalog (issue 15's
"ranking adds <= 50% to the nightly's score time").

    python -m bench.ranked_nightly_bench --users 50000            # 50k users x 50k items
    python -m bench.ranked_nightly_bench --users 5000 --docs ''   # a quick check
    python -m bench.ranked_nightly_bench --users 20000 --depths 100,50,25  # the cost knob

Steps, each its own process (seconds and peak RSS as in ``bench.nightly_bench``), on a
redis-server of its own (``--redis-port``, no persistence) and a throw-away Feast project:

1. ``reco data synthetic`` (``--users`` x ``--items``, ``--per-user`` interactions each, 180 days)
2. ``feast apply``
3. ``RECO_RANKER=false reco train``  (ALS only)
4. ``reco nightly``                  (ALS lists: the run manifest's ``score`` phase)
5. ``RECO_RANKER=true reco train``   (the same plus the two-stage ranker, per ``--depths``,
                                      shipped whatever its replay says)
6. ``reco nightly``                  (ranked lists, with provenance; again per depth)

The comparison is the two manifests' ``score`` seconds (scoring only: the list writes run in
a thread beside it and are timed apart) per user, and their ratio. Results: ``--out`` (JSON)
and the ranked-nightly section of ``--docs``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from bench.markdown import replace_section
from bench.nightly_bench import BIN, StepFailed, _env, _night, _own_redis, run_meta, run_step
from bench.repo import copy_feature_repo
from recommender.config import Settings
from recommender.featurestore.repo import feast_cli_env

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- ranked-nightly-bench:start -->", "<!-- ranked-nightly-bench:end -->"
log = logging.getLogger("bench.ranked_nightly")


def _phases(step: dict[str, Any]) -> dict[str, Any]:
    manifest = step["manifest"]
    return {
        "seconds": step["seconds"],
        "peak_rss_mb": step["peak_rss_mb"],
        "lists": manifest["lists"],
        "users": manifest["users_written"],
        "phases": manifest["durations_s"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    repo = copy_feature_repo(work)
    project = f"rankedbench{args.users}"
    url = f"redis://127.0.0.1:{args.redis_port}/0"
    # the ALS-only night explicitly, and the ranked one whatever its replay says (a cost
    # benchmark on synthetic tastes: the ranker's quality is measured in docs/evaluation.md)
    env = {**_env(work, project, url, "local"), "RECO_RANKER": "false"}
    settings = Settings(feature_repo=repo, feast_project=project, redis_url=url)  # type: ignore[call-arg]
    feast = {**env, **feast_cli_env(settings)}
    reco = str(BIN / "reco")
    steps: dict[str, Any] = {}
    server = _own_redis(args.redis_port, work)
    try:
        synth = [
            f"--users={args.users}",
            f"--items={args.items}",
            f"--interactions={args.users * args.per_user}",
            "--days=180",
            "--seed=1",
        ]
        steps["data"] = run_step([reco, "data", "synthetic", *synth], env)
        steps["feast_apply"] = run_step([str(BIN / "feast"), "apply"], feast, cwd=repo)
        steps["train_als"] = run_step([reco, "train"], env)
        steps["night_als"] = _phases(_night(env))
        for name in ("data", "feast_apply", "train_als"):
            steps[name].pop("out", None)
        if steps["night_als"]["lists"] != "als":
            raise StepFailed(f"unexpected lists: {steps['night_als']}")
        for depth in args.depths:
            ranked_env = {
                **env,
                "RECO_RANKER": "true",
                "RECO_RANKER_REQUIRE_WIN": "false",
                "RECO_RANKER_DEPTH": str(depth),
            }
            train = run_step([reco, "train"], ranked_env)
            train.pop("out", None)
            night = _phases(_night(ranked_env))
            if night["lists"] != "ranked":
                raise StepFailed(f"unexpected lists at depth {depth}: {night}")
            steps[f"train_ranked_{depth}"], steps[f"night_ranked_{depth}"] = train, night
    finally:
        server.terminate()
        server.wait(30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    als = steps["night_als"]["phases"]["score"]
    steps["score_ms_per_user"] = {"als": round(1000 * als / args.users, 3)}
    steps["ranked_over_als"] = {}
    for depth in args.depths:
        ranked = steps[f"night_ranked_{depth}"]["phases"]["score"]
        steps["score_ms_per_user"][f"ranked_{depth}"] = round(1000 * ranked / args.users, 3)
        steps["ranked_over_als"][str(depth)] = round(ranked / als, 2)
    return steps


def markdown(out: dict[str, Any]) -> str:
    meta, s = out["meta"], out["result"]
    per = s["score_ms_per_user"]
    depths = [int(d) for d in s["ranked_over_als"]]
    head = " | ".join(f"ranked, depth {d}" for d in depths)

    def row(label: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    def both(step: dict[str, Any]) -> str:
        return f"{step['seconds']} / {step['peak_rss_mb']}"

    lines = [
        f"`{meta['command']}`, {meta['date']}, {meta['machine']}: {meta['users']:,} users x "
        f"{meta['items']:,} items, {meta['per_user']} interactions per user; depth: candidates "
        "each retriever proposes per user (`RECO_RANKER_DEPTH`).",
        "",
        f"| | ALS-only nightly | {head} |",
        "|---|" + "---:|" * (1 + len(depths)),
        row(
            "train (s / peak MB)",
            [both(s["train_als"])] + [both(s[f"train_ranked_{d}"]) for d in depths],
        ),
        row(
            "nightly (s / peak MB)",
            [both(s["night_als"])] + [both(s[f"night_ranked_{d}"]) for d in depths],
        ),
        row(
            "score phase (s)",
            [f"{s['night_als']['phases']['score']:.1f}"]
            + [f"{s[f'night_ranked_{d}']['phases']['score']:.1f}" for d in depths],
        ),
        row(
            "score ms per user",
            [str(per["als"])] + [str(per[f"ranked_{d}"]) for d in depths],
        ),
        row(
            "ranked / ALS-only score time (target <= 1.5x)",
            ["1"] + [f"**{s['ranked_over_als'][str(d)]}x**" for d in depths],
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--per-user", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path("/tmp/reco-ranked-bench"))
    ap.add_argument("--redis-port", type=int, default=6440)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument(
        "--depths",
        type=lambda v: [int(d) for d in v.split(",")],
        default=[100],
        help="ranker depths to train and run, comma-separated (RECO_RANKER_DEPTH)",
    )
    ap.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "ranked_nightly_bench.json"
    )
    ap.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"), help="'' for none")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out: dict[str, Any] = {
        "meta": run_meta(
            "bench.ranked_nightly_bench",
            users=args.users,
            items=args.items,
            per_user=args.per_user,
            depths=args.depths,
        ),
    }
    out["result"] = run(args)
    log.info("%s", json.dumps(out["result"], default=str))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    if args.docs:
        replace_section(Path(args.docs), START, END, f"{START}\n{markdown(out)}\n{END}")


if __name__ == "__main__":
    main()
