import numpy as np

from recommender.training.index import ItemIndex


def test_search_equals_brute_force(rng: np.random.Generator) -> None:
    items = rng.normal(size=(200, 16)).astype(np.float32)
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    rows, scores = ItemIndex.build(items).search(queries, 10)
    expected = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    assert (rows == expected).all()
    assert np.allclose(scores, np.take_along_axis(queries @ items.T, expected, axis=1), atol=1e-4)


def test_exclusions_never_appear_and_lists_stay_full(rng: np.random.Generator) -> None:
    items = rng.normal(size=(50, 4)).astype(np.float32)
    q = rng.normal(size=(1, 4)).astype(np.float32)
    best = ItemIndex.build(items).search(q, 5)[0][0]
    rows, _ = ItemIndex.build(items).search(q, 5, exclude=[set(best[:3].tolist())])
    assert not set(rows[0]) & set(best[:3]) and (rows[0] >= 0).all()


def test_pads_when_catalog_is_exhausted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    index = ItemIndex.build(np.eye(3, dtype=np.float32))
    index.save(tmp_path / "i.faiss")
    rows, scores = ItemIndex.load(tmp_path / "i.faiss").search(np.ones((1, 3)), 5, exclude=[{0}])
    assert sorted(rows[0][:2].tolist()) == [1, 2] and rows[0][2:].tolist() == [-1, -1, -1]
    assert np.isinf(scores[0][2:]).all()


def test_large_catalogs_get_an_hnsw_index_with_measured_recall() -> None:
    from recommender.training.index import recall_at

    rng = np.random.default_rng(3)
    centers = rng.normal(size=(50, 16))
    items = (centers[rng.integers(0, 50, 6000)] + 0.3 * rng.normal(size=(6000, 16))).astype("f4")
    users = (centers[rng.integers(0, 50, 800)] + 0.3 * rng.normal(size=(800, 16))).astype("f4")
    index = ItemIndex.build(items, queries=users, exact_max=5000, target_recall=0.95)
    assert index.info["kind"] == "hnsw" and index.info["recall_at_100"] >= 0.95
    exact = ItemIndex.build(items)
    assert exact.info["kind"] == "flat"
    q = users[:200]
    assert recall_at(index.search_raw(q, 100)[0], exact.search_raw(q, 100)[0]) >= 0.93


def test_hnsw_keeps_ef_search_through_save_and_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    items = rng.normal(size=(3000, 8)).astype("f4")
    index = ItemIndex.build(items, exact_max=1000)
    index.save(tmp_path / "i.faiss")
    loaded = ItemIndex.load(tmp_path / "i.faiss", index.info)
    assert loaded.index.hnsw.efSearch == index.index.hnsw.efSearch == index.info["ef_search"]
    assert (loaded.search_raw(items[:5], 10)[0] == index.search_raw(items[:5], 10)[0]).all()
