"""Per-path evidence on served lists with a known answer: a path that misses what popularity
hits is routed to popularity, a path that hits keeps the model, too few users keep it too."""

from __future__ import annotations

from recommender.evaluation.pathevidence import Served, path_key, served_paths
from recommender.training.manifest import ServedPaths


def _pair(path: str, fallback: str, user: str, model_hits: bool) -> list[Served]:
    truth = {"hit"}
    model = ["hit", "x"] if model_hits else ["x", "y"]
    popular = ["y", "hit"]  # popularity finds it, at rank 2
    return [
        Served(path, 1, user, "all", model, truth),
        Served(fallback, 1, user, "all", popular, truth),
    ]


def test_paths_are_routed_by_their_own_fallback() -> None:
    served: list[Served] = []
    for u in range(30):
        served += _pair("realtime n=1", "popular n=1", f"new{u}", model_hits=False)
        served += _pair("precomputed", "popular known", f"old{u}", model_hits=True)
    for u in range(5):  # too few users to judge: the model keeps the path
        served += _pair("realtime profile", "popular n=0", f"prof{u}", model_hits=False)
    served.append(Served("popular", 3, "fell-back", "all", ["hit"], {"hit"}))  # no path chose it
    evidence = served_paths(served, "2026-11-01", k=10)
    assert set(evidence.paths) == {"new:1", "known", "profile"}
    new, known = evidence.paths["new:1"], evidence.paths["known"]
    assert (new.route, new.ndcg, new.users) == ("popular", 0.0, 30)
    assert new.fallback_ndcg > 0 and new.diff_high < 0  # worse, and the interval says so
    assert known.route == "model" and known.ndcg == 1.0 and known.diff_low > 0
    assert evidence.paths["profile"].route == "model"  # 5 users < min_users
    assert evidence.routed("new:1") is new and evidence.routed("known") is None
    assert new.served_ndcg == new.fallback_ndcg and known.served_ndcg == known.ndcg
    # stored and read back as the manifest does
    assert ServedPaths.model_validate_json(evidence.model_dump_json()) == evidence


def test_path_names_and_new_user_buckets() -> None:
    assert path_key("realtime n=3") == ("new:3", "model")
    assert path_key("popular n=3") == ("new:3", "popular")
    assert path_key("onestage n=3") == ("new:3", "one_stage")
    assert path_key("precomputed") == ("known", "model")
    assert path_key("popular") is None
    evidence = ServedPaths(cutoff="t", paths={})
    assert evidence.new_user_path(2) is None  # no evidence: no path to route
    served = [
        s
        for u in range(25)
        for n in (1, 3, 5)
        for s in _pair(f"realtime n={n}", f"popular n={n}", f"u{u}", True)
    ]
    evidence = served_paths(served, "t")
    assert [evidence.new_user_path(m) for m in (0, 1, 2, 3, 4, 5, 9)] == [
        None,
        "new:1",
        "new:1",
        "new:3",
        "new:3",
        "new:5",
        "new:5",
    ]


def test_a_ranked_bundles_new_users_go_to_the_best_of_two_stage_one_stage_and_popularity() -> None:
    truth = {"hit"}
    served: list[Served] = []
    for u in range(30):
        # n = 1: two-stage misses, the one-stage fold-in hits first, popularity second
        served += [
            Served("realtime n=1", 1, f"a{u}", "all", ["x", "y"], truth),
            Served("onestage n=1", 1, f"a{u}", "all", ["hit", "x"], truth),
            Served("popular n=1", 1, f"a{u}", "all", ["y", "hit"], truth),
        ]
        # n = 3: both model lists miss: popularity serves
        served += [
            Served("realtime n=3", 3, f"b{u}", "all", ["x", "y"], truth),
            Served("onestage n=3", 3, f"b{u}", "all", ["x", "y"], truth),
            Served("popular n=3", 3, f"b{u}", "all", ["y", "hit"], truth),
        ]
        # n = 5: two-stage ties the one-stage fold-in and beats popularity: it stays
        served += [
            Served("realtime n=5", 5, f"c{u}", "all", ["hit"], truth),
            Served("onestage n=5", 5, f"c{u}", "all", ["hit"], truth),
            Served("popular n=5", 5, f"c{u}", "all", ["y", "hit"], truth),
        ]
    evidence = served_paths(served, "t")
    one, three, five = (evidence.paths[f"new:{n}"] for n in (1, 3, 5))
    assert one.route == "one_stage" and one.one_stage_ndcg == 1.0 and one.ndcg == 0.0
    assert evidence.one_stage("new:1") is one and evidence.routed("new:1") is None
    assert one.served_ndcg == 1.0 and one.served_ratio is not None and one.served_ratio > 1
    assert "one-stage fold-in 1.0000" in one.why
    assert three.route == "popular" and evidence.routed("new:3") is three
    assert five.route == "model" and evidence.one_stage("new:5") is None
