"""The promotion gate, both ways."""

from __future__ import annotations

from typing import Any

from recommender.lifecycle.promotion import decide
from recommender.training.manifest import ModelManifest

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
