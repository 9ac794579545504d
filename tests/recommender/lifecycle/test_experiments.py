"""Assignment: deterministic, sticky, matching the weights within sampling error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recommender.errors import InvalidRequest
from recommender.lifecycle.experiments import (
    CANARY_STEPS,
    Experiment,
    ServingConfig,
    Shadow,
    Variant,
    canary_step,
    with_weight,
)

USERS = [f"user{i}" for i in range(20_000)]


def _exp(weights: tuple[float, ...] = (50, 50)) -> Experiment:
    names = ["control", "canary", "third"][: len(weights)]
    return Experiment(
        "e1", tuple(Variant(n, w) for n, w in zip(names, weights, strict=True)), salt="s1"
    )


def test_assignment_is_deterministic_across_instances() -> None:
    a, b = _exp(), Experiment.from_dict(_exp().to_dict())
    assert [a.assign(u).name for u in USERS[:500]] == [b.assign(u).name for u in USERS[:500]]


@pytest.mark.parametrize("weights", [(50, 50), (95, 5), (20, 30, 50)])
def test_assignment_matches_the_weights_within_sampling_error(weights: tuple[float, ...]) -> None:
    exp = _exp(weights)
    names = [v.name for v in exp.variants]
    counts = np.array([0] * len(names))
    for u in USERS:
        counts[names.index(exp.assign(u).name)] += 1
    expected = np.array(weights) / 100 * len(USERS)
    # chi-square goodness of fit: a correct hash fails this 0.1% of the time
    assert stats.chisquare(counts, expected).pvalue > 0.001, (counts, expected)


def test_a_different_salt_reshuffles_users() -> None:
    a, b = _exp(), Experiment("e2", _exp().variants, salt="other")
    same = np.mean([a.assign(u).name == b.assign(u).name for u in USERS[:4000]])
    assert 0.45 < same < 0.55  # independent halves agree half the time


def test_canary_ramp_only_adds_users_and_dropping_back_only_removes() -> None:
    exp = Experiment("c", (Variant("control", 95), Variant("canary", 5, "v2")), salt="x")
    previous = {u for u in USERS if exp.assign(u).name == "canary"}
    for step in (25, 50, 100):
        exp = with_weight(exp, "canary", step)
        now = {u for u in USERS if exp.assign(u).name == "canary"}
        assert previous <= now and abs(len(now) / len(USERS) - step / 100) < 0.02
        previous = now
    back = with_weight(exp, "canary", 25)
    in_canary = {u for u in USERS if back.assign(u).name == "canary"}
    assert in_canary <= previous and abs(len(in_canary) / len(USERS) - 0.25) < 0.02
    assert [s["weights"]["canary"] for s in back.ramp] == [25, 50, 100, 25]


def test_with_weight_shares_the_rest_in_proportion() -> None:
    exp = with_weight(_exp((20, 30, 50)), "third", 0)
    assert exp.weights == {"control": 40, "canary": 60, "third": 0}
    assert sum(exp.weights.values()) == 100


def test_canary_steps() -> None:
    assert CANARY_STEPS == (0, 5, 25, 50, 100)
    assert [canary_step(w, 1) for w in (0, 5, 25, 50, 100)] == [5, 25, 50, 100, 100]
    assert [canary_step(w, -1) for w in (100, 50, 25, 5, 0)] == [50, 25, 5, 0, 0]


@pytest.mark.parametrize(
    "variants",
    [
        (Variant("a", 50),),
        (Variant("a", 50), Variant("a", 50)),
        (Variant("a", 60), Variant("b", 60)),
        (Variant("a", -1), Variant("b", 101)),
        (Variant("a", 50), Variant("b", 50, mode="fast")),
    ],
)
def test_bad_experiments_are_refused(variants: tuple[Variant, ...]) -> None:
    with pytest.raises(InvalidRequest):
        Experiment("bad", variants)


def test_serving_config_round_trip_and_needed_models() -> None:
    exp = Experiment("e", (Variant("control", 50), Variant("b", 50, "v2", "realtime")))
    config = ServingConfig(exp, Shadow("v3", 0.5))
    again = ServingConfig.parse(config.to_json())
    assert again.experiment == exp and again.shadow == Shadow("v3", 0.5)
    assert again.model_versions() == {"v2", "v3"}
    assert ServingConfig.parse(None) == ServingConfig()
    sampled = np.mean([Shadow("v3", 0.25).sampled(f"r{i}") for i in range(8000)])
    assert 0.22 < sampled < 0.28
