"""Exact vs IVF vs HNSW on ALS factors of a synthetic catalog: recall@100 against exact search
and time per single query (1 thread). Not part of the tests.

Usage: ``.venv/bin/python -m bench.index_bench [--items 50000]``; writes
bench/results/index.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import faiss
import numpy as np

from recommender.data.synthetic import synthetic_catalog
from recommender.data.tables import build_tables
from recommender.data.vocab import Vocab, user_item_matrix
from recommender.models import ALSModel
from recommender.training.index import recall_at

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench")


def per_query_ms(index: faiss.Index, queries: np.ndarray, k: int) -> float:
    t0 = time.perf_counter()
    for q in queries:
        index.search(q[None, :], k)
    return (time.perf_counter() - t0) / len(queries) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=500_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    faiss.omp_set_num_threads(1)
    raw = synthetic_catalog(args.users, args.items, args.interactions, days=14, seed=1)
    inter = build_tables(*raw)["interactions"]
    users = Vocab.from_ids(sorted(inter["user_id"].unique()))
    items = Vocab.from_ids(sorted(inter["item_id"].unique()))
    als = ALSModel(factors=128, regularization=20, alpha=2, iterations=15).fit(
        user_item_matrix(inter, users, items)
    )
    vectors, k = als.item_factors, 100
    queries = als.user_factors[np.random.default_rng(0).choice(len(users), 300, replace=False)]
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, k)
    rows = [{"index": "exact", "param": "-", "recall": 1.0, "ms": per_query_ms(exact, queries, k)}]
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 200
    hnsw.add(vectors)
    for ef in (128, 256, 512):
        hnsw.hnsw.efSearch = ef
        recall = recall_at(hnsw.search(queries, k)[1], truth)
        rows.append(
            {
                "index": "hnsw M32",
                "param": f"efSearch {ef}",
                "recall": recall,
                "ms": per_query_ms(hnsw, queries, k),
            }
        )
    for nlist in (256, int(4 * np.sqrt(len(vectors)))):
        ivf = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
        )
        ivf.train(vectors)
        ivf.add(vectors)
        for nprobe in (32, 128, 512):
            ivf.nprobe = min(nprobe, nlist)
            recall = recall_at(ivf.search(queries, k)[1], truth)
            rows.append(
                {
                    "index": f"ivf {nlist} lists",
                    "param": f"nprobe {ivf.nprobe}",
                    "recall": recall,
                    "ms": per_query_ms(ivf, queries, k),
                }
            )
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    out = {"items": len(items), "users": len(users), "k": k, "rows": rows}
    (ROOT / "bench" / "results" / "index.json").write_text(json.dumps(out, indent=2))
    lines = [
        f"{len(items)} items, 128 factors, k={k}, 300 user-vector queries, 1 thread",
        "",
        "| index | parameter | recall@100 | ms / query |",
        "|---|---|---|---|",
        *(f"| {r['index']} | {r['param']} | {r['recall']:.3f} | {r['ms']:.2f} |" for r in rows),
    ]
    log.info("\n".join(lines))


if __name__ == "__main__":
    main()
