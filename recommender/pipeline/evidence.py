"""What `reco train` decides on the future, inside its own training data: ALS's parameters,
the new users' popularity blend, whether the two-stage ranker ships, and each serving path's
route (docs/evaluation.md, "Per-path evidence").

Everything is decided on a seeded sample of users (``RECO_HOLDOUT_FIT_USERS``) and two time
cut-offs of it: choices are made at the 80% quantile on what happened before the 90% one;
the serving paths are then replayed at the 90% quantile (fitted before it, judged on what the
users did after it), so no choice has seen what judges it.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import pandas as pd

from recommender.config import Settings
from recommender.errors import InvalidDataset
from recommender.evaluation.futuretuning import FUTURE_GRID, NoFuture, choose_params
from recommender.evaluation.pathevidence import served_paths
from recommender.evaluation.protocols import sample_users
from recommender.evaluation.rankedreplay import replay_ranked
from recommender.evaluation.replay import beyond_accuracy, choose_blend, replay_served
from recommender.ranking.twostage import RankingConfig
from recommender.training.manifest import FutureTuning, RankerChoice, ServedPaths

log = logging.getLogger(__name__)
PATH_REPLAY_QUANTILE = 0.9  # the serving paths' replay: trained before it, judged after
BLEND_QUANTILE = 0.8  # choices (ALS's parameters, the blend) are made at this earlier cut-off
POPULARITY_BLENDS = (0.0, 0.25, 0.5, 0.75, 0.9)
RANKER_CUTOFFS = 3
FUTURE_TUNING_USERS = 30_000  # ALS's grid on the future is fitted on at most these users
# the ranker's label window (and the spacing of its cut-offs): on the replay at ML-1M's 90%
# quantile, 28 days took the ranked lists from 1.15x to 1.29x popularity (14 days) and
# 42 days gave 1.25x; on ML-100K 28 days gave 1.68x against 14 days' 1.61x
RANKER_LABEL_DAYS = 28.0


class Cuts(NamedTuple):
    """Choices (ALS's parameters, the new users' blend) are made at ``choose`` on what
    happened before ``judge``; the serving paths are judged after ``judge``."""

    choose: pd.Timestamp
    judge: pd.Timestamp


class ReplayTables(NamedTuple):
    """The tables a replay reads besides the interactions: user profiles (indexed by user
    id), item titles, and the users (a ranked replay only: None without one) and items tables
    as stored."""

    profiles: pd.DataFrame
    titles: pd.Series
    users: pd.DataFrame | None
    items: pd.DataFrame


def judged_sample(settings: Settings, interactions: pd.DataFrame) -> tuple[pd.DataFrame, Cuts]:
    """The seeded sample of users every choice on the future is made on, and its cut-offs."""
    sample, _ = sample_users(interactions, settings.training.holdout_fit_users, settings.seed)
    ts = sample["event_timestamp"]
    return sample, Cuts(ts.quantile(BLEND_QUANTILE), ts.quantile(PATH_REPLAY_QUANTILE))


def tune_on_future(
    settings: Settings,
    interactions: pd.DataFrame,
    params: dict[str, Any],
    source: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], FutureTuning | None]:
    """ALS's regularization and alpha chosen on the future (:mod:`~recommender.evaluation.
    futuretuning`): fitted on the sample before its 80% time quantile, judged on its
    returning users up to the 90% quantile (what follows is the serving paths' replay). An
    explicit RECO_ALS_* value stays; off with ``RECO_FUTURE_TUNING=false``."""
    return tune_at(settings, *judged_sample(settings, interactions), params, source)


def tune_at(
    settings: Settings,
    sample: pd.DataFrame,
    cuts: Cuts,
    params: dict[str, Any],
    source: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], FutureTuning | None]:
    """:func:`tune_on_future` on ``sample`` at ``cuts`` (chosen at ``cuts.choose`` on what
    happened before ``cuts.judge``)."""
    explicit = set(settings.training.als.model_fields_set)
    grid = {k: v for k, v in FUTURE_GRID.items() if k not in explicit}
    if not settings.training.future_tuning or not grid:
        return params, source, None
    earlier = sample[sample["event_timestamp"] < cuts.judge]
    earlier, _ = sample_users(earlier, FUTURE_TUNING_USERS, settings.seed)  # twelve fits
    try:
        chosen, record = choose_params(earlier, cuts.choose.to_pydatetime(), params, grid)
    except NoFuture as exc:
        log.warning("ALS parameters not tuned on the future: %s", exc)
        return params, source, None
    log.info(
        "ALS on the future (%d returning users): %s, NDCG@10 %.4f (popularity %.4f)",
        record.users,
        record.best,
        max(record.scores.values()),
        record.popularity,
    )
    return chosen, {"kind": "future", "before": source, "chose": sorted(grid)}, record


def ranking_config(settings: Settings) -> RankingConfig:
    """The ranker's knobs. Its retrievers' ALS, refitted at every cut-off, keeps the ranking
    defaults: refitting it with the served ALS's parameters (tuned on the future) scored
    1.27x / 1.16x popularity on ML-1M's replays at the 90% / 80% quantiles, against 1.29x /
    1.16x with the defaults (an exploratory run of `default_bundle_evidence` with each)."""
    return RankingConfig(
        depth=settings.training.ranker.depth, rounds=settings.training.ranker.rounds
    )


def path_evidence(
    settings: Settings,
    interactions: pd.DataFrame,
    params: dict[str, Any],
    tables: ReplayTables,
    ranker: bool = False,
) -> tuple[ServedPaths | None, RankerChoice | None]:
    """Each serving path against its popularity fallback on a replay inside the training data
    (fitted with the same parameters on the sample before its 90% time quantile, scored on
    what those users did after it), and the route that implies.

    With ``ranker``, the ranked bundle is replayed too (:func:`~recommender.evaluation.
    rankedreplay.replay_ranked`, its new users beside the one-stage fold-in), and the ranker
    ships only if its known users' lists serve them at least as well as the one-stage
    bundle's: the evidence returned is the replay of the bundle that ships, and the choice
    says why. None (logged) when the data leave one side of a cut-off empty."""
    return replays_at(settings, *judged_sample(settings, interactions), params, tables, ranker)


def replays_at(
    settings: Settings,
    sample: pd.DataFrame,
    cuts: Cuts,
    params: dict[str, Any],
    tables: ReplayTables,
    ranker: bool = False,
) -> tuple[ServedPaths | None, RankerChoice | None]:
    """:func:`path_evidence` on ``sample`` at ``cuts``: the blend chosen at ``cuts.choose``,
    the paths judged after ``cuts.judge``."""
    before_judged = sample[sample["event_timestamp"] < cuts.judge]
    profiles, titles = tables.profiles, tables.titles
    try:  # the blend is chosen on an earlier cut-off, on what happened before the judged part
        earlier, after, _ = replay_served(
            before_judged, profiles, titles, cuts.choose.to_pydatetime(), params, known=False
        )
        blend, tried = choose_blend(earlier, after, profiles, POPULARITY_BLENDS)
        log.info("new users' popularity blend %.2f (NDCG@10 by weight: %s)", blend, tried)
        bundle, _, served = replay_served(
            sample, profiles, titles, cuts.judge.to_pydatetime(), params, popularity_blend=blend
        )
    except ValueError as exc:
        log.warning("serving paths not replayed: %s", exc)
        return None, (
            RankerChoice(kept=not settings.training.ranker.require_win, reason=f"no replay: {exc}")
            if ranker
            else None
        )
    describe = beyond_accuracy(bundle, 10)
    evidence = served_paths(served, cuts.judge.isoformat(), seed=settings.seed, describe=describe)
    choice = None
    if ranker:
        evidence, choice = _ranked_or_not(settings, sample, cuts, params, tables, blend, evidence)
    evidence.popularity_blend, evidence.blend_scores = blend, {str(w): s for w, s in tried.items()}
    for path in evidence.paths.values():
        log.info(
            "path %s: NDCG@10 %.4f vs popularity %.4f (%d users) -> %s",
            path.path,
            path.ndcg,
            path.fallback_ndcg,
            path.users,
            path.route,
        )
    return evidence, choice


def _ranked_or_not(
    settings: Settings,
    sample: pd.DataFrame,
    cuts: Cuts,
    params: dict[str, Any],
    tables: ReplayTables,
    blend: float,
    one_stage: ServedPaths,
) -> tuple[ServedPaths, RankerChoice]:
    """The ranked bundle's replay, and whether it ships (its known users served at least as
    well as by the one-stage bundle's lists)."""
    if tables.users is None:
        raise ValueError("a ranked replay needs the users table")
    try:
        bundle, _, served = replay_ranked(
            sample,
            tables.users,
            tables.items,
            cuts.judge.to_pydatetime(),
            params,
            ranking_config(settings),
            RANKER_LABEL_DAYS,
            RANKER_CUTOFFS,
            popularity_blend=blend,
            ranker_users=settings.training.ranker.fit_users,
            seed=settings.seed,
        )
    except (InvalidDataset, ValueError) as exc:
        kept = not settings.training.ranker.require_win
        log.warning("the ranked replay failed (ranker %s): %s", "kept" if kept else "dropped", exc)
        return one_stage, RankerChoice(kept=kept, reason=f"the ranked replay failed: {exc}")
    ranked = served_paths(
        served, cuts.judge.isoformat(), seed=settings.seed, describe=beyond_accuracy(bundle, 10)
    )
    mine, theirs = ranked.paths.get("known"), one_stage.paths.get("known")
    if mine is None or theirs is None:
        kept = not settings.training.ranker.require_win
        return one_stage, RankerChoice(kept=kept, reason="no known users on the replay")
    wins = mine.served_ndcg >= theirs.served_ndcg
    kept = wins or not settings.training.ranker.require_win
    verdict = "at least as well as" if wins else "worse than"
    forced = "" if wins or not kept else " (kept: RECO_RANKER_REQUIRE_WIN is off)"
    choice = RankerChoice(
        kept=kept,
        reason=f"the ranked lists served known users {verdict} the one-stage lists "
        f"(NDCG@10 {mine.served_ndcg:.4f} against {theirs.served_ndcg:.4f}, {mine.users} users)"
        f"{forced}",
        ranked_known=mine.served_ndcg,
        one_stage_known=theirs.served_ndcg,
    )
    log.info("ranker %s: %s", "kept" if kept else "dropped", choice.reason)
    return (ranked if kept else one_stage), choice
