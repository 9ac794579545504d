"""`reco models ...`: model versions, promotion and rollback."""

from __future__ import annotations

from typing import Annotated

import typer

from jobs.cli.common import clean_errors, echo_json, load_settings
from recommender.pipeline.release import promote, rollback
from recommender.training.registry import get, list_versions, resolve

app = typer.Typer(help="Model versions: list, show, promote, roll back.", no_args_is_help=True)


@app.command("list")
@clean_errors
def models_list() -> None:
    """Every version, newest first, with status and offline metrics."""
    rows = [v.summary() for v in list_versions(load_settings().artifacts_dir)]
    for r in rows:
        ndcg = f"{r['ndcg@10']:.4f}" if r["ndcg@10"] is not None else "-"
        routed, one_stage = r["routed_to_popularity"], r["routed_to_one_stage"]
        paths = f"  routed to popularity: {', '.join(routed)}" if routed else ""
        paths += f"  one-stage fold-in: {', '.join(one_stage)}" if one_stage else ""
        paths += {True: "  ranker: kept", False: "  ranker: dropped"}.get(r["ranker"], "")
        typer.echo(
            f"{r['version']}  {r['status']:<10}  ndcg@10={ndcg}  data to {r['last_event']}{paths}"
        )
    if not rows:
        typer.echo("no model versions yet; run `reco nightly --retrain`")


@app.command("show")
@clean_errors
def models_show(
    version: Annotated[str, typer.Argument(help="A version, or 'production'.")],
) -> None:
    """A version's manifest, status and journal entries."""
    root = load_settings().artifacts_dir
    v = get(root, resolve(root, version))
    manifest = v.manifest.model_dump(exclude={"files"})
    echo_json(
        {"version": v.version, "status": v.status, "history": v.history, "manifest": manifest}
    )


@app.command("promote")
@clean_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="The candidate version to make production.")],
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses.")] = False,
    reason: Annotated[str, typer.Option(help="Recorded in the registry journal.")] = "",
) -> None:
    """Check the promotion gate, score every user with VERSION and publish its lists with
    it (one atomic switch; APIs swap models without a restart)."""
    echo_json(promote(load_settings(), version, force=force, reason=reason))


@app.command("rollback")
@clean_errors
def models_rollback(
    to: Annotated[
        str | None, typer.Option(help="Default: the previous production version.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Recorded in the registry journal.")] = "",
) -> None:
    """Back to the previous production model and its lists: a pointer switch when its list
    slot is intact, else a rescoring run."""
    echo_json(rollback(load_settings(), to=to, reason=reason))
