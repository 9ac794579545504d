"""Served-hybrid replay on two taste groups: every path is scored, and personal paths beat
the popularity fallback on the same users and truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.data.tables import build_tables
from recommender.evaluation.replay import choose_blend, judged_users, replay_hybrid, replay_served
from recommender.serving import paths
from tests.support.synthetic import synthetic_tables

ALS = {"factors": 2, "regularization": 0.1, "alpha": 2.0, "iterations": 15}
CUTOFF = pd.Timestamp("2024-02-15", tz="UTC")


def _replay(rng: np.random.Generator) -> dict:
    tables = build_tables(*synthetic_tables(rng, users_per_group=30, per_user=14))
    inter = tables["interactions"].copy()
    # the last five users of each group arrive after the cutoff: they are new to the model
    late = inter["user_id"].str.extract(r"user(\d+)$")[0].astype(int) >= 25
    inter.loc[late, "event_timestamp"] += pd.Timedelta(days=100)
    return replay_hybrid(
        inter,
        tables["users"].set_index("user_id"),
        tables["items"].set_index("item_id")["title"],
        CUTOFF.to_pydatetime(),
        ALS,
        ks=(5,),
        ns=(1, 3),
    )


@pytest.fixture
def result(rng: np.random.Generator) -> dict:
    return _replay(rng)


def by_path(result: dict) -> dict[str, dict]:
    return {r["path"]: r for r in result["rows"] if r["segment"] == "all"}


def test_every_path_is_scored(result: dict) -> None:
    paths = by_path(result)
    assert {"precomputed", "realtime n=1", "realtime n=3", "realtime profile"} <= set(paths)
    assert {"popular known", "popular n=0", "popular n=1", "popular n=3"} <= set(paths)
    assert result["new_users"] == 10 and result["known_users"] == 50
    assert paths["realtime n=1"]["users"] == 10
    segments = {r["segment"] for r in result["rows"]}
    assert {"gender M", "gender F"} <= segments
    assert any(s.startswith("activity") for s in segments)


def test_beyond_accuracy_per_path(result: dict) -> None:
    """Coverage, novelty and intra-list diversity beside NDCG: popularity shows the same head
    to everyone, so its lists cover less of the catalog and are less novel."""
    paths = by_path(result)
    for name in ("precomputed", "realtime n=1"):
        assert {"coverage@5", "novelty@5", "ild@5"} <= set(paths[name])
    assert paths["precomputed"]["coverage@5"] > paths["popular known"]["coverage@5"]
    assert paths["precomputed"]["novelty@5"] > paths["popular known"]["novelty@5"]
    known = result["paths"]["paths"]["known"]["beyond"]
    assert set(known) == {
        f"{p}{m}@10" for p in ("", "fallback_") for m in ("coverage", "novelty", "ild")
    }
    assert 0.0 <= known["ild@10"] <= 2.0


def test_personal_paths_beat_the_fallback(result: dict) -> None:
    paths = by_path(result)
    for n in (1, 3):
        assert paths[f"realtime n={n}"]["ndcg@5"] > paths[f"popular n={n}"]["ndcg@5"] + 0.1
    assert paths["realtime profile"]["ndcg@5"] > paths["popular n=0"]["ndcg@5"] + 0.1
    assert paths["precomputed"]["ndcg@5"] > paths["popular known"]["ndcg@5"] + 0.1


def test_cutoff_must_split_the_data(rng: np.random.Generator) -> None:
    tables = build_tables(*synthetic_tables(rng, users_per_group=4, per_user=5))
    with pytest.raises(ValueError, match="leaves no interactions"):
        replay_hybrid(
            tables["interactions"],
            tables["users"].set_index("user_id"),
            tables["items"].set_index("item_id")["title"],
            pd.Timestamp("2030-01-01", tz="UTC").to_pydatetime(),
            ALS,
        )


def test_the_replay_runs_the_api_serving_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Change the serving code the API runs, and the replay's numbers follow: it calls the
    same functions, not a copy of them."""
    before = _replay(np.random.default_rng(20261122))
    served_from_list = paths.from_precomputed

    def reversed_list(bundle, stored, k, *args, **kwargs):  # type: ignore[no-untyped-def]
        flipped = {**stored, "item_ids": list(stored["item_ids"])[::-1]}
        return served_from_list(bundle, flipped, k, *args, **kwargs)

    monkeypatch.setattr(paths, "from_precomputed", reversed_list)
    after = _replay(np.random.default_rng(20261122))
    old, new = by_path(before), by_path(after)
    assert new["precomputed"]["ndcg@5"] < old["precomputed"]["ndcg@5"]
    assert new["realtime n=1"] == old["realtime n=1"]  # only the changed function's path
    assert new["popular known"] == old["popular known"]  # the fallback did not change
    # the per-path evidence (what `reco train` stores) follows too
    assert after["paths"]["paths"]["known"]["ndcg"] < before["paths"]["paths"]["known"]["ndcg"]


def test_the_blend_is_chosen_on_what_new_users_did_next(rng: np.random.Generator) -> None:
    tables = build_tables(*synthetic_tables(rng, users_per_group=30, per_user=14))
    inter = tables["interactions"].copy()
    late = inter["user_id"].str.extract(r"user(\d+)$")[0].astype(int) >= 25
    inter.loc[late, "event_timestamp"] += pd.Timedelta(days=100)
    profiles = tables["users"].set_index("user_id")
    bundle, after, _ = replay_served(
        inter, profiles, tables["items"].set_index("item_id")["title"], CUTOFF, ALS
    )
    best, scores = choose_blend(bundle, after, profiles, (0.0, 0.5, 1.0), k=5, ns=(1, 3))
    assert set(scores) == {0.0, 0.5, 1.0} and best == max(scores, key=lambda w: (scores[w], -w))
    # two taste groups: the user's own items say more than popularity, which mixes both groups
    assert scores[0.0] > scores[1.0]


def test_a_replay_judges_a_seeded_sample_of_each_kind_of_user() -> None:
    after = pd.DataFrame(
        {
            "user_id": [f"k{u}" for u in range(50)] * 2 + [f"n{u}" for u in range(30)],
            "item_id": "i",
        }
    )
    known = np.array([f"k{u}" for u in range(50)])
    kept = judged_users(after, known, max_known=10, max_new=5, seed=3)
    users = set(kept["user_id"])
    assert len({u for u in users if u.startswith("k")}) == 10
    assert len({u for u in users if u.startswith("n")}) == 5
    assert len(kept) == 10 * 2 + 5  # every row of a kept user
    assert kept.equals(judged_users(after, known, max_known=10, max_new=5, seed=3))
    assert judged_users(after, known).equals(after)  # under the caps: everyone
