"""The real-time two-stage path on the two-taste-group data: retrieve, rank with the bundle's
LightGBM ranker, then the rules; provenance per item and the features that moved it up; the
ranker saved and loaded with the bundle."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.data.tables import build_tables
from recommender.featurestore.names import ITEM_METADATA, ITEM_STATS
from recommender.ranking.dataset import TableReader
from recommender.ranking.features import Genres
from recommender.ranking.model import fit_two_stage
from recommender.ranking.twostage import RankingConfig
from recommender.serving import paths
from recommender.serving.rerank import RankingItems
from recommender.serving.rules import Catalog, Rules
from recommender.training.artifacts import ModelBundle, load_bundle, save_bundle
from recommender.training.fit import fit_bundle
from tests.support.bundles import ALS
from tests.support.synthetic import synthetic_tables

START = pd.Timestamp("2024-01-01", tz="UTC")
NOW = datetime(2024, 3, 15, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def served() -> tuple[ModelBundle, RankingItems, Catalog]:
    tables = build_tables(*synthetic_tables(np.random.default_rng(11), per_user=14))
    inter = tables["interactions"]
    bundle = fit_bundle(
        inter,
        tables["items"].set_index("item_id")["title"],
        tables["users"].set_index("user_id"),
        ALS,
        version="rerank",
    )
    genres = Genres.from_lists(
        tables["items"].set_index("item_id")["genres"].reindex(bundle.items.ids).tolist()
    )
    config = RankingConfig(depth=20, als=ALS, rounds=40, lgb_params={"min_data_in_leaf": 5})
    cutoffs = [START + pd.Timedelta(days=d) for d in (30, 40)]
    bundle.ranking = fit_two_stage(
        inter,
        bundle.items,
        TableReader(tables),
        genres,
        cutoffs,
        20,
        config,
    )
    # the decoded online views of every item, as the API holds them (latest values)
    stats = tables[ITEM_STATS].sort_values("event_timestamp").groupby("item_id").last()
    meta = tables["items"].set_index("item_id")
    views = {
        i: {
            ITEM_STATS: stats.loc[i].to_dict() if i in stats.index else {},
            ITEM_METADATA: {"year": meta.loc[i, "year"], "genres": list(meta.loc[i, "genres"])},
        }
        for i in bundle.items.ids.tolist()
    }
    return (
        bundle,
        RankingItems.from_views(views, bundle),
        Catalog.from_frame(tables["items"], bundle.items),
    )


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
