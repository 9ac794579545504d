"""Render an evaluation report: ``metrics.json``, ``summary.md``, ``summary.html`` and PNG
plots (metric@k per model, coverage vs accuracy, cold-start quality vs n)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from recommender.fileio import write_text_atomic  # noqa: E402

TABLE_METRICS = ("ndcg", "recall", "precision", "map", "mrr", "hit", "coverage", "novelty", "arp")


def model_table(report: dict[str, Any], k: int) -> pd.DataFrame:
    """One row per model: metrics at ``k``, fit seconds and parameters."""
    rows = []
    for name, result in report["models"].items():
        m = result["metrics"]
        row = {"model": name, **{f"{x}@{k}": m.get(f"{x}@{k}") for x in TABLE_METRICS}}
        row["fit_s"] = result["fit_seconds"]
        row["params"] = ", ".join(
            f"{p}={v}" for p, v in result["params"].items() if p != "random_state"
        )
        rows.append(row)
    return pd.DataFrame(rows).sort_values(f"ndcg@{k}", ascending=False)


def reference_table(report: dict[str, Any], k: int = 10) -> pd.DataFrame | None:
    ref = report.get("reference")
    if not ref or k not in report["ks"]:
        return None
    rows = [{"model": f"ours: {n}", **_pick(r["metrics"], k)} for n, r in report["models"].items()]
    rows += [{"model": name, **values} for name, values in ref["rows"].items()]
    return pd.DataFrame(rows).sort_values(f"ndcg@{k}", ascending=False)


def _pick(metrics: dict[str, float], k: int) -> dict[str, float]:
    return {f"recall@{k}": metrics[f"recall@{k}"], f"ndcg@{k}": metrics[f"ndcg@{k}"]}


def replay_table(report: dict[str, Any], k: int, segments: bool = False) -> pd.DataFrame | None:
    replay = report.get("replay")
    if not replay or not replay["rows"]:
        return None
    df = pd.DataFrame(replay["rows"])
    df = df[df["segment"] != "all"] if segments else df[df["segment"] == "all"]
    cols = ["path", "segment", "users", f"ndcg@{k}", f"recall@{k}", f"hit@{k}", f"coverage@{k}"]
    cols += [c for c in (f"novelty@{k}", f"ild@{k}") if c in df.columns]
    return df[cols].sort_values(["path", "segment"]).reset_index(drop=True)


def plot_metric_curves(report: dict[str, Any], path: Path) -> None:
    ks = report["ks"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("ndcg", "recall"), strict=True):
        for name, result in report["models"].items():
            ax.plot(ks, [result["metrics"][f"{metric}@{k}"] for k in ks], marker="o", label=name)
        ax.set(xlabel="k", ylabel=f"{metric}@k", title=f"{metric.upper()}@k")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_coverage_accuracy(report: dict[str, Any], path: Path, k: int) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, result in report["models"].items():
        m = result["metrics"]
        ax.scatter(m[f"coverage@{k}"], m[f"ndcg@{k}"], s=60)
        ax.annotate(
            name, (m[f"coverage@{k}"], m[f"ndcg@{k}"]), xytext=(4, 4), textcoords="offset points"
        )
    ax.set(xlabel=f"catalog coverage@{k}", ylabel=f"NDCG@{k}", title="Accuracy vs coverage")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_coldstart(report: dict[str, Any], path: Path, k: int) -> bool:
    table = replay_table(report, k)
    if table is None:
        return False
    by_path = table.set_index("path")[f"ndcg@{k}"]
    ns = [0, *sorted({int(p.split("=")[1]) for p in by_path.index if p.startswith("realtime n=")})]
    if len(ns) == 1 and "realtime profile" not in by_path:
        return False  # no new users after the cutoff: nothing to plot
    nan = float("nan")
    realtime = [by_path.get("realtime profile" if n == 0 else f"realtime n={n}", nan) for n in ns]
    popular = [by_path.get(f"popular n={n}", nan) for n in ns]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(ns, realtime, marker="o", label="real-time (profile at n=0, fold-in after)")
    ax.plot(ns, popular, marker="s", label="popularity fallback")
    # known users' nightly lists are not drawn: their truth sets differ, so the scale does too
    ax.set(xlabel="interactions known (n)", ylabel=f"NDCG@{k}", title="New users: quality vs n")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _markdown(report: dict[str, Any], k: int, plots: list[str]) -> str:
    split = report["split"]
    lines = [
        f"# Evaluation: {report['dataset']}, protocol {split['protocol']}",
        "",
        f"Created {report['created_at']}. Catalog: {report['catalog']['users']} users, "
        f"{report['catalog']['items']} items; minimum rating: {report['min_rating']}.",
        "",
        "Split: " + ", ".join(f"{key}={value}" for key, value in split.items()),
        "",
        f"## Models at k={k} (test part, full ranking)",
        "",
        model_table(report, k).to_markdown(index=False, floatfmt=".4f"),
    ]
    ref = reference_table(report, k)
    if ref is not None:
        lines += [
            "",
            "## Next to published numbers (same protocol)",
            "",
            f"Source: {report['reference']['source']} ({report['reference']['url']})",
            "",
            ref.to_markdown(index=False, floatfmt=".4f"),
        ]
    if report.get("tuning"):
        lines += ["", "## Tuning (validation part)", ""]
        for name, result in report["tuning"].items():
            lines.append(
                f"- {name}: {len(result['trials'])} trials on {result['metric']}, "
                f"best {result['best_params']}"
            )
    lines += two_stage_markdown(report)
    table = replay_table(report, k)
    if table is not None:
        replay = report["replay"]
        lines += [
            "",
            f"## Served hybrid, replayed as of {replay['cutoff']}",
            "",
            f"{replay['known_users']} known users, {replay['new_users']} new users after the "
            "cutoff. `popular n=X` scores the fallback on the same users and truth.",
            "",
            table.to_markdown(index=False, floatfmt=".4f"),
            "",
            "### By segment",
            "",
            _segments_markdown(report, k),
            *evidence_markdown(report),
        ]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


ROUTE_NAMES = {"popular": "popularity", "one_stage": "one-stage fold-in", "model": "model"}


def evidence_markdown(report: dict[str, Any]) -> list[str]:
    """Each path against its own popularity fallback (the users who took it), per cut-off:
    NDCG@10 of both, the paired 95% interval of the difference, and where `reco train` would
    route the path."""
    lines: list[str] = []
    for cut in (report.get("replay") or {}).get("evidence") or []:
        lines += [
            "",
            f"### Per path against its popularity fallback, cut-off {cut['cutoff']} "
            f"({cut['quantile']:.0%} quantile)",
            "",
            "| path | users | NDCG@10 | popularity | ratio | 95% interval of the difference "
            "| served by | coverage@10 | novelty@10 | ILD@10 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for e in cut["paths"].values():
            ratio = f"{e['ratio']:.2f}x" if e["ratio"] is not None else "-"
            route = ROUTE_NAMES.get(e["route"], e["route"])
            b = e.get("beyond") or {}
            extra = [
                f"{b.get(m, float('nan')):.3f} / {b.get('fallback_' + m, float('nan')):.3f}"
                for m in ("coverage@10", "novelty@10", "ild@10")
            ]
            ndcg = f"{e['ndcg']:.4f}"
            if e.get("one_stage_ndcg") is not None:
                ndcg += f" (one-stage {e['one_stage_ndcg']:.4f})"
            lines.append(
                f"| {e['path']} | {e['users']} | {ndcg} | {e['fallback_ndcg']:.4f} | "
                f"{ratio} | [{e['diff_low']:+.4f}, {e['diff_high']:+.4f}] | {route} | "
                + " | ".join(extra)
                + " |"
            )
        choice = cut.get("ranker_choice") or {}
        lines += [
            "",
            "Beyond accuracy: the path's lists / its popularity fallback's. ALS "
            + ", ".join(f"{k} {v}" for k, v in sorted((cut.get("als") or {}).items()))
            + (
                f"; ranker {'kept' if choice['kept'] else 'dropped'}: {choice['reason']}"
                if choice
                else ""
            )
            + ".",
        ]
    return lines


def two_stage_markdown(report: dict[str, Any]) -> list[str]:
    """The ranked model's section: the union's recall, the ranker, paired intervals."""
    two = report.get("two_stage")
    if not two:
        return []
    union, ranker = two["union"], two["ranker"]
    rows = pd.DataFrame(two["intervals"])
    lines = [
        "",
        "## Two-stage: retrievers + LightGBM LambdaRank ranker",
        "",
        f"Candidates: top {union['depth_per_retriever']} of each retriever, "
        f"{union['mean_candidates']:.0f} per user on average; the union's recall "
        f"(the ceiling any ranker can reach): {union['recall']:.4f}.",
        "",
        f"Ranker: {ranker['train_rows']} rows, {ranker['train_queries']} queries, cut-offs "
        f"{', '.join(ranker['cutoffs']) or 'validation part'}; rows built in "
        f"{ranker['rows_seconds']} s, LightGBM fit {ranker['fit_seconds']} s.",
        "",
        "Top features by gain: " + ", ".join(list(ranker["importance"])[:6]) + ".",
    ]
    if not rows.empty:
        cols = ["a", "b", "mean_a", "mean_b", "diff", "low", "high", "ratio", "users"]
        lines += [
            "",
            "Paired bootstrap (users resampled, 2000 times) of NDCG@10, ranked minus each:",
            "",
            rows[cols].to_markdown(index=False, floatfmt=".4f"),
        ]
    return lines


def _segments_markdown(report: dict[str, Any], k: int) -> str:
    table = replay_table(report, k, segments=True)
    return "(no segments)" if table is None else table.to_markdown(index=False, floatfmt=".4f")


def _html(report: dict[str, Any], k: int, plots: list[str]) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>Evaluation {html.escape(report['dataset'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>",
        f"<h1>Evaluation: {html.escape(report['dataset'])}, "
        f"protocol {html.escape(report['split']['protocol'])}</h1>",
        f"<h2>Models at k={k}</h2>",
        model_table(report, k).to_html(index=False, float_format="%.4f"),
    ]
    ref = reference_table(report, k)
    if ref is not None:
        parts += [
            "<h2>Next to published numbers</h2>",
            ref.to_html(index=False, float_format="%.4f"),
        ]
    table = replay_table(report, k)
    if table is not None:
        parts += ["<h2>Served hybrid replay</h2>", table.to_html(index=False, float_format="%.4f")]
    parts += [f"<h2>{html.escape(p)}</h2><img src='{html.escape(p)}'>" for p in plots]
    return "\n".join(parts) + "\n"


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write every file of the report under ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    k = 10 if 10 in report["ks"] else report["ks"][0]
    plots = ["metrics_at_k.png", "coverage_vs_ndcg.png"]
    plot_metric_curves(report, out / plots[0])
    plot_coverage_accuracy(report, out / plots[1], k)
    if plot_coldstart(report, out / "coldstart_vs_n.png", k):
        plots.append("coldstart_vs_n.png")
    write_text_atomic(out / "metrics.json", json.dumps(report, indent=2, default=str))
    write_text_atomic(out / "summary.md", _markdown(report, k, plots))
    write_text_atomic(out / "summary.html", _html(report, k, plots))
