"""The promotion gate (pure): may a candidate replace production?

A candidate is promoted only when, on the same evaluation protocol, none of its offline
metrics is worse than production's by more than a relative tolerance, no serving path serves
its users worse than production's does (each version's replay, a path routed to popularity
counting as popularity), and no drift check marked it suspicious. The decision always
carries its reasons, both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from recommender.training.manifest import MIN_PATH_USERS, ModelManifest

# What defines a protocol; counts (train/test sizes) differ between data snapshots.
PROTOCOL_KEYS = ("protocol", "test_fraction", "refit_on_train_and_valid")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    comparison: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons, "comparison": self.comparison}


def _protocol(manifest: ModelManifest) -> dict[str, Any]:
    proto = manifest.protocol
    return {k: proto.get(k) for k in PROTOCOL_KEYS}


def decide(
    candidate: ModelManifest,
    production: ModelManifest | None,
    metrics: Sequence[str] = ("ndcg@10", "recall@10"),
    tolerance: float = 0.02,
    drift_reasons: Sequence[str] = (),
    model: str = "als",
) -> Decision:
    """Compare manifests. ``tolerance`` is relative: 0.02 lets a metric be up to 2% lower."""
    if production is None:
        return Decision(True, ["no production model yet"])
    if candidate.version == production.version:
        return Decision(False, ["the candidate is the production version"])
    reasons: list[str] = []
    ok = True
    cand_proto, prod_proto = _protocol(candidate), _protocol(production)
    if cand_proto != prod_proto:
        return Decision(
            False,
            [f"not comparable: protocol {cand_proto} differs from production's {prod_proto}"],
        )
    comparison: dict[str, dict[str, float | None]] = {}
    for name in metrics:
        c = candidate.metric(name, model)
        p = production.metric(name, model)
        comparison[name] = {"candidate": c, "production": p}
        if c is None or p is None:
            ok = False
            reasons.append(f"{name} missing ({'candidate' if c is None else 'production'})")
            continue
        floor = p * (1 - tolerance)
        if c < floor:
            ok = False
            reasons.append(
                f"{name} {c:.4f} is worse than production's {p:.4f} beyond the "
                f"{tolerance:.0%} tolerance (floor {floor:.4f})"
            )
        else:
            reasons.append(f"{name} {c:.4f} vs production {p:.4f}: within tolerance or better")
    path_ok, path_reasons = compare_paths(candidate, production, tolerance)
    ok = ok and path_ok
    reasons += path_reasons
    if drift_reasons:
        ok = False
        reasons += [f"drift: {r}" for r in drift_reasons]
    return Decision(ok, reasons, comparison)


def compare_paths(
    candidate: ModelManifest, production: ModelManifest, tolerance: float
) -> tuple[bool, list[str]]:
    """Per serving path, what users get as served relative to popularity on each version's
    own replay (the model's NDCG@10 over its fallback's, 1 where the path is routed to
    popularity): no path may be worse than production's beyond the relative ``tolerance``.
    Each version is replayed at its own cut-off, so absolute NDCG is not comparable; the
    ratio to the same users' popularity is. Paths without evidence on both sides, or with
    fewer than :data:`MIN_PATH_USERS` users on either, are not compared (and say so)."""
    cand, prod = candidate.served_paths, production.served_paths
    if cand is None or prod is None:
        missing = "candidate" if cand is None else "production"
        return True, [f"serving paths not compared: no replay evidence ({missing})"]
    ok, reasons = True, []
    for path in sorted(set(cand.paths) & set(prod.paths)):
        c, p = cand.paths[path], prod.paths[path]
        cr, pr = c.served_ratio, p.served_ratio
        if min(c.users, p.users) < MIN_PATH_USERS or cr is None or pr is None:
            reasons.append(f"the {path} path not compared: too little evidence")
            continue
        floor = pr * (1 - tolerance)
        if cr < floor:
            ok = False
            reasons.append(
                f"the {path} path serves {cr:.2f}x popularity, worse than production's "
                f"{pr:.2f}x beyond the {tolerance:.0%} tolerance"
            )
        else:
            reasons.append(f"the {path} path serves {cr:.2f}x popularity vs production {pr:.2f}x")
    return ok, reasons
