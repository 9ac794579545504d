"""The promotion gate, both ways."""

from __future__ import annotations

from typing import Any

from recommender.lifecycle.promotion import decide
from recommender.training.manifest import ModelManifest, PathEvidence, ServedPaths

PROTOCOL = {"protocol": "user-temporal", "test_fraction": 0.2, "refit_on_train_and_valid": True}


def _manifest(version: str, ndcg: float, recall: float, **proto: Any) -> ModelManifest:
    return ModelManifest(
        version=version,
        metrics={
            "protocol": {**PROTOCOL, "test_interactions": 123, **proto},
            "als": {"ndcg@10": ndcg, "recall@10": recall},
        },
    )


def test_first_model_is_promoted() -> None:
    d = decide(_manifest("v1", 0.3, 0.2), None)
    assert d.promote and d.reasons == ["no production model yet"]


def test_better_or_within_tolerance_is_promoted() -> None:
    d = decide(_manifest("v2", 0.297, 0.25), _manifest("v1", 0.30, 0.2), tolerance=0.02)
    assert d.promote, d.reasons
    assert d.comparison["ndcg@10"] == {"candidate": 0.297, "production": 0.30}


def test_worse_beyond_tolerance_is_refused_with_the_reason() -> None:
    d = decide(_manifest("v2", 0.28, 0.25), _manifest("v1", 0.30, 0.2), tolerance=0.02)
    assert not d.promote
    assert (
        "ndcg@10 0.2800 is worse than production's 0.3000 beyond the 2% tolerance" in d.reasons[0]
    )


def test_other_protocol_is_not_comparable() -> None:
    d = decide(_manifest("v2", 0.5, 0.5, test_fraction=0.1), _manifest("v1", 0.3, 0.2))
    assert not d.promote and d.reasons[0].startswith("not comparable")


def test_drift_blocks_promotion() -> None:
    d = decide(_manifest("v2", 0.4, 0.3), _manifest("v1", 0.3, 0.2), drift_reasons=["PSI high"])
    assert not d.promote and d.reasons[-1] == "drift: PSI high"


def _paths(**served: tuple[float, float, str]) -> ServedPaths:
    """``path=(model ndcg, popularity ndcg, route)``."""
    return ServedPaths(
        cutoff="t",
        paths={
            name: PathEvidence(
                path=name,
                users=100,
                ndcg=m,
                fallback_ndcg=p,
                ratio=m / p,
                diff_low=0.0,
                diff_high=0.0,
                route=route,  # type: ignore[arg-type]
            )
            for name, (m, p, route) in served.items()
        },
    )


def test_a_candidate_worse_than_production_on_any_path_is_refused() -> None:
    prod = _manifest("v1", 0.30, 0.2)
    prod.served_paths = _paths(known=(0.30, 0.25, "model"), **{"new:1": (0.10, 0.20, "popular")})
    # as good offline, but its known-user lists are worse than production's
    worse = _manifest("v2", 0.30, 0.2)
    worse.served_paths = _paths(known=(0.26, 0.25, "model"), **{"new:1": (0.12, 0.20, "popular")})
    d = decide(worse, prod, tolerance=0.02)
    assert not d.promote
    assert any(
        "the known path serves 1.04x popularity, worse than production" in r for r in d.reasons
    )
    # a new:1 path that still loses to popularity is routed there: it serves popularity's
    # 0.20, as production's does, so it does not hold the candidate back
    better = _manifest("v3", 0.30, 0.2)
    better.served_paths = _paths(known=(0.33, 0.25, "model"), **{"new:1": (0.15, 0.20, "popular")})
    d = decide(better, prod, tolerance=0.02)
    assert d.promote, d.reasons
    # a path with too few users on either side is not compared
    thin = _manifest("v5", 0.30, 0.2)
    thin.served_paths = _paths(known=(0.26, 0.25, "model"))
    thin.served_paths.paths["known"].users = 5
    d = decide(thin, prod, tolerance=0.02)
    assert d.promote and "the known path not compared: too little evidence" in d.reasons
    # without evidence on one side, the paths are not compared (and the reason says so)
    d = decide(_manifest("v4", 0.30, 0.2), prod, tolerance=0.02)
    assert d.promote and any("no replay evidence (candidate)" in r for r in d.reasons)
