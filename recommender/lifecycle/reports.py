"""Reports on disk for experiments and drift: ``report.json``, ``report.md`` and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from recommender.fileio import write_text_atomic  # noqa: E402

TABLE_COLUMNS = [
    "variant",
    "exposures",
    "users",
    "ctr",
    "ctr_lo",
    "ctr_hi",
    "user_ctr",
    "user_ctr_lo",
    "user_ctr_hi",
    "conversion",
    "diff_vs_control",
    "diff_lo",
    "diff_hi",
    "p_value",
]


def experiment_markdown(report: dict[str, Any]) -> str:
    exp = report["experiment"]
    table = pd.DataFrame(report["table"]).reindex(columns=TABLE_COLUMNS)
    weights = ", ".join(
        f"{v['name']} {v['weight']:g}% ({v['model_version'] or 'production'})"
        for v in exp["variants"]
    )
    lines = [
        f"# Experiment `{exp['name']}` ({exp['status']})",
        "",
        f"Started {exp['started_at']}; weights now: {weights}. Control: `{report['control']}`.",
        f"Exposures: {report['exposures']}; events carrying a recommendation id: "
        f"{report['events_with_ids']}, attributed: {report['attributed_events']} "
        f"(window {report['window_hours']:g} h); "
        f"not attributed: {report['unattributed'] or 'none'}.",
        "",
        "Click-through per exposure and per user with 95% Wilson intervals; the difference of "
        "the user click rate to the control with a Newcombe interval and a two-proportion "
        "z-test (statsmodels). The user is the unit of randomisation.",
        "",
        table.to_markdown(index=False, floatfmt=".4f") if len(table) else "(no exposures yet)",
        "",
        "Ramp:",
        "",
        *[f"- {step['at']}: {step['weights'] or 'stopped'}" for step in exp.get("ramp", [])],
        "",
    ]
    return "\n".join(lines)


def write_experiment_report(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.json", json.dumps(report, indent=2, sort_keys=True))
    write_text_atomic(out / "report.md", experiment_markdown(report))
    paths = [out / "report.json", out / "report.md"]
    table = pd.DataFrame(report["table"])
    if len(table):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, (col, title) in zip(
            axes,
            (("ctr", "click-through per exposure"), ("user_ctr", "users who clicked")),
            strict=True,
        ):
            err = [
                (table[col] - table[f"{col}_lo"]).clip(lower=0).fillna(0),
                (table[f"{col}_hi"] - table[col]).clip(lower=0).fillna(0),
            ]
            ax.bar(
                table["variant"],
                table[col],
                yerr=err,
                capsize=6,
                color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][: len(table)],
            )
            ax.set_title(f"{title} (95% CI)")
            ax.set_ylim(bottom=0)
        fig.suptitle(f"experiment {report['experiment']['name']}")
        fig.tight_layout()
        fig.savefig(out / "ctr.png", dpi=100)
        plt.close(fig)
        paths.append(out / "ctr.png")
    return paths


def monitor_markdown(summary: dict[str, Any]) -> str:
    features = pd.DataFrame(summary.get("features") or [])
    lists = summary.get("lists") or {}
    verdict = (
        "SUSPICIOUS: " + "; ".join(summary["reasons"])
        if summary.get("suspicious")
        else "nothing suspicious"
    )
    return "\n".join(
        [
            f"# Drift report, run `{summary.get('run_id')}`",
            "",
            f"Model `{summary.get('model_version')}`, previous run "
            f"`{summary.get('previous_run_id')}`, at {summary.get('at')}.",
            f"Verdict: {verdict}.",
            "",
            "## Features: Feast now (newest data) vs the model's training snapshot",
            "",
            features.to_markdown(index=False, floatfmt=".4f")
            if len(features)
            else "(no training snapshot)",
            "",
            "## Recommendations: this run vs the previous run (top-10)",
            "",
            pd.Series(lists, dtype=float).to_frame("value").to_markdown(floatfmt=".4f")
            if lists
            else "(no lists)",
            "",
        ]
    )


def write_monitor_report(summary: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.json", json.dumps(summary, indent=2, sort_keys=True))
    write_text_atomic(out / "report.md", monitor_markdown(summary))
    paths = [out / "report.json", out / "report.md"]
    features = pd.DataFrame(summary.get("features") or [])
    lists = summary.get("lists") or {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if len(features):
        axes[0].barh(features["feature"], features["psi"].fillna(0), color="#4c72b0")
        axes[0].axvline(0.25, color="#c44e52", linestyle="--", label="0.25")
        axes[0].set_title("feature PSI (recent vs training)")
        axes[0].legend()
    names = [
        k
        for k in ("coverage", "coverage_previous", "gini", "gini_previous", "overlap_previous")
        if lists.get(k) is not None
    ]
    if names:
        axes[1].bar(names, [lists[k] for k in names], color="#55a868")
        axes[1].set_ylim(0, 1)
        axes[1].tick_params(axis="x", rotation=30)
        axes[1].set_title("lists: coverage, Gini, overlap")
    fig.tight_layout()
    fig.savefig(out / "drift.png", dpi=100)
    plt.close(fig)
    paths.append(out / "drift.png")
    return paths
