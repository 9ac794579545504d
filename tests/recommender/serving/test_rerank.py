"""The real-time two-stage path on the two-taste-group data: retrieve, rank with the bundle's
LightGBM ranker, then the rules; provenance per item and the features that moved it up; the
ranker saved and loaded with the bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.serving import paths
from recommender.serving.rerank import RankingItems, two_stage_many
from recommender.serving.rules import Catalog, Rules
from recommender.training.artifacts import ModelBundle, load_bundle, save_bundle
from tests.support.ranked import NOW, jobs_of, ranked_bundle


@pytest.fixture(scope="module")
def served() -> tuple[ModelBundle, RankingItems, Catalog]:
    return ranked_bundle()


def _ask(
    served: tuple[ModelBundle, RankingItems, Catalog],
    rules: Rules,
    recent: list[str],
    explain: bool,
) -> paths.Ranked:
    bundle, items, catalog = served
    ranking = paths.RankingInput(items, "newcomer", {}, NOW, explain)
    return paths.realtime(bundle, 5, recent, rules=rules, catalog=catalog, ranking=ranking)


def test_a_new_user_gets_ranked_items_of_their_taste_with_provenance(
    served: tuple[ModelBundle, RankingItems, Catalog],
) -> None:
    ranked = _ask(served, Rules(), ["a1", "a2", "a3"], explain=True)
    assert (ranked.source, ranked.strategy) == ("realtime", "two_stage")
    assert len(ranked.item_ids) == 5 and all(i.startswith("a") for i in ranked.item_ids)
    assert not {"a1", "a2", "a3"} & set(ranked.item_ids)
    assert ranked.scores == sorted(ranked.scores, reverse=True)
    retrievers = set(served[0].ranking.ranker.manifest.retrievers)  # type: ignore[union-attr]
    assert ranked.provenance and all(p and set(p) <= retrievers for p in ranked.provenance)
    features = set(served[0].ranking.ranker.manifest.feature_names)  # type: ignore[union-attr]
    assert ranked.moved_by is not None and len(ranked.moved_by) == 5
    assert all(set(m) <= features for m in ranked.moved_by) and any(ranked.moved_by)


def test_rules_apply_after_ranking(served: tuple[ModelBundle, RankingItems, Catalog]) -> None:
    plain = _ask(served, Rules(), ["a1", "a2"], explain=False)
    no_comedy = _ask(
        served, Rules(exclude={"genres": frozenset({"Comedy"})}), ["a1", "a2"], explain=False
    )
    comedies = {f"a{j}" for j in range(0, 20, 4)}
    assert not comedies & set(no_comedy.item_ids)
    # the same ranked order with the comedies taken out
    kept = [i for i in plain.item_ids if i not in comedies]
    assert no_comedy.item_ids[: len(kept)] == kept
    assert plain.moved_by is None


def test_the_ranker_is_saved_and_loaded_with_the_bundle(
    served: tuple[ModelBundle, RankingItems, Catalog], tmp_path: Path
) -> None:
    bundle = served[0]
    save_bundle(bundle, tmp_path, publish=True)
    loaded = load_bundle(tmp_path)
    assert loaded.ranking is not None
    assert any(name.startswith("ranking/") for name in loaded.manifest.files)
    again = _ask((loaded, served[1], served[2]), Rules(), ["b1", "b4"], explain=False)
    first = _ask(served, Rules(), ["b1", "b4"], explain=False)
    assert again.item_ids == first.item_ids and again.scores == first.scores
    (tmp_path / "models" / bundle.version / "ranking" / "ranker.txt").write_text("tree\n")
    with pytest.raises(Exception, match="checksum"):
        load_bundle(tmp_path)


def test_requests_ranked_in_one_block_get_what_each_gets_alone(
    served: tuple[ModelBundle, RankingItems, Catalog],
) -> None:
    jobs = jobs_of(served)
    together = two_stage_many(jobs)
    assert len(together) == len(jobs)
    for job, got in zip(jobs, together, strict=True):
        alone = two_stage_many([job])[0]
        np.testing.assert_array_equal(got.rows, alone.rows)
        np.testing.assert_allclose(got.scores, alone.scores, rtol=1e-12)
        assert got.provenance == alone.provenance and got.moved_by == alone.moved_by
        assert len(got.rows) == job.k and (got.moved_by is not None) == job.explain
    assert two_stage_many([]) == []
