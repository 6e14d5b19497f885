"""Vector search benchmark (the hot path): recall@10 against exact search vs speed.

    python -m lede.eval.bench.ann --sizes 100000,1000000 --json eval/results/bench_ann.json

Vectors: real all-MiniLM-L6-v2 chunk embeddings read from the indexes that `lede eval` built
under `.lede/eval-cache/` (SciFact, SQuAD, Cranfield, ... ; 189,313 distinct vectors after
the evaluation runs), and real query embeddings of those datasets' queries. Where a size asks
for more vectors than exist, the rest are synthetic: drawn from a Gaussian with the mean and
covariance of the real vectors, then L2-normalized (documented in the JSON as
`synthetic_vectors`). With no cache at all everything is synthetic that way from a random
anisotropic Gaussian. For each FAISS factory: build time, memory (serialized size),
recall@10 against `Flat` ground truth, single-thread queries/s (one query at a time) and batch
queries/s (all cores, 1,000 queries at once), over several search-time settings. Writes JSON
and a recall-vs-QPS plot like ann-benchmarks.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from lede.eval.report import write_result
from lede.indexer.views.dense_search import pq_subvectors, search_parameters

DIMENSION = 384
# 4-bit fast-scan PQ finds candidates in IVF lists; SQ8 codes re-score them (the service's
# `refine_k_factor`: 200 candidates for a top-10).
REFINED = "IVF{nlist},PQ{pq}x4fs,Refine(SQ8)"


def real_vectors(cache: Path, limit: int) -> np.ndarray:
    """Distinct chunk embeddings from the evaluation indexes' SQLite files."""
    import sqlite3

    blobs: set[bytes] = set()
    for database in sorted(cache.glob("*/lede.sqlite")):
        if len(blobs) >= limit:
            break
        with sqlite3.connect(database) as connection:
            for (blob,) in connection.execute("SELECT embedding FROM chunks"):
                if len(blob) == DIMENSION * 4:
                    blobs.add(bytes(blob))
                if len(blobs) >= limit:
                    break
    if not blobs:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    return np.stack([np.frombuffer(b, dtype=np.float32) for b in sorted(blobs)])


def real_query_texts(count: int) -> list[str]:
    """A seeded sample of real queries from the BEIR datasets beside the checkout."""
    import json

    from lede.eval.datasets import SHARED_DATASETS

    texts: list[str] = []
    for path in sorted(SHARED_DATASETS.glob("*/queries.jsonl")):
        with open(path) as handle:
            texts += [json.loads(line)["text"] for line in handle if line.strip()]
    picked = np.random.default_rng(5).choice(len(texts), min(count, len(texts)), replace=False)
    return [texts[i] for i in picked]


def real_queries(count: int) -> np.ndarray:
    """Embeddings of `real_query_texts`."""
    from lede.indexer.encoders.embedder import SentenceTransformerEmbedder

    texts = real_query_texts(count)
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    return SentenceTransformerEmbedder().embed(texts)


def gaussian_like(reference: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Vectors from a Gaussian fitted to `reference` (or a random anisotropic one), normalized."""
    rng = np.random.default_rng(seed)
    if len(reference) > DIMENSION:
        mean = reference.mean(axis=0)
        covariance = np.cov(reference, rowvar=False)
    else:
        mean = np.zeros(DIMENSION)
        scales = rng.uniform(0.2, 1.0, DIMENSION)
        covariance = np.diag(scales**2)
    vectors = rng.multivariate_normal(mean, covariance, size=count, method="cholesky")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    result: np.ndarray = vectors.astype(np.float32)
    return result


ALL_THREADS = faiss.omp_get_max_threads()


def _qps_single(index: faiss.Index, queries: np.ndarray, k: int, params: Any) -> float:
    faiss.omp_set_num_threads(1)
    started = time.perf_counter()
    for row in range(len(queries)):
        index.search(queries[row : row + 1], k, params=params)
    elapsed = time.perf_counter() - started
    faiss.omp_set_num_threads(ALL_THREADS)
    return len(queries) / elapsed


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def configurations(size: int) -> list[tuple[str, list[dict[str, int]]]]:
    """(FAISS factory string, search settings to sweep) for a corpus of `size` vectors."""
    nlist = 1024 if size <= 200_000 else 4096
    probes = [{"nprobe": p} for p in (1, 4, 8, 16, 32, 64, 128)]
    return [
        ("Flat", [{}]),
        ("HNSW32", [{"efSearch": e} for e in (16, 32, 64, 128, 256)]),
        (f"IVF{nlist},Flat", probes),
        (f"IVF{nlist},SQ8", probes),
        (f"IVF{nlist},PQ48", probes),
        (REFINED.format(nlist=nlist, pq=pq_subvectors(DIMENSION)), probes),
    ]


def bench_size(
    size: int, base_pool: np.ndarray, query_vectors: np.ndarray, k: int, skip: set[str]
) -> tuple[list[dict[str, Any]], int]:
    real = base_pool[:size]
    extra = size - len(real)
    base = real if extra == 0 else np.vstack([real, gaussian_like(base_pool, extra, seed=size)])
    exact = faiss.IndexFlatIP(DIMENSION)
    exact.add(base)
    _, truth = exact.search(query_vectors, k)
    rows = []
    for factory, settings in configurations(size):
        if any(factory.startswith(prefix) for prefix in skip):
            continue
        started = time.perf_counter()
        index = faiss.index_factory(DIMENSION, factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            sample = base[np.random.default_rng(3).choice(size, min(size, 100_000), replace=False)]
            index.train(sample)
        index.add(base)
        build_s = time.perf_counter() - started
        memory = len(faiss.serialize_index(index))
        for setting in settings:
            params = search_parameters(
                index, k, None, setting.get("efSearch"), setting.get("nprobe")
            )
            started = time.perf_counter()
            _, found = index.search(query_vectors, k, params=params)
            batch_qps = len(query_vectors) / (time.perf_counter() - started)
            single = query_vectors[: min(200, len(query_vectors))]
            rows.append(
                {
                    "size": size,
                    "factory": factory,
                    "search": setting,
                    "recall@10": round(_recall(found, truth), 4),
                    "single_thread_qps": round(_qps_single(index, single, k, params), 1),
                    "batch_qps": round(batch_qps, 1),
                    "build_s": round(build_s, 2),
                    "memory_mb": round(memory / 1e6, 1),
                    "synthetic_vectors": extra,
                }
            )
            print(rows[-1], flush=True)
    return rows, extra


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in rows})
    figure, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        for factory in dict.fromkeys(r["factory"] for r in rows if r["size"] == size):
            points = [r for r in rows if r["size"] == size and r["factory"] == factory]
            axis.plot(
                [p["recall@10"] for p in points],
                [p["single_thread_qps"] for p in points],
                marker="o",
                label=factory,
            )
        axis.set_yscale("log")
        axis.set_xlabel("recall@10 (vs exact)")
        axis.set_ylabel("queries/s, one thread")
        axis.set_title(f"{size:,} vectors, 384-d")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PREFIX",
        help="Skip factories whose string starts with PREFIX (repeatable; factory strings "
        'hold commas, e.g. --skip "IVF4096,PQ48").',
    )
    parser.add_argument("--cache", type=Path, default=Path(".lede/eval-cache"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=Path("eval/results/bench_ann.png"))
    args = parser.parse_args(argv)
    skip = {s for s in args.skip if s}
    sizes = [int(s) for s in args.sizes.split(",")]
    pool = real_vectors(args.cache, max(sizes))
    queries = real_queries(args.queries)
    if len(queries) < args.queries:
        queries = np.vstack([queries, gaussian_like(pool, args.queries - len(queries), seed=1)])
    rows = []
    synthetic = {}
    for size in sizes:
        size_rows, synthetic[size] = bench_size(size, pool, queries, 10, skip)
        rows += size_rows
    plot(rows, args.plot)
    config = {
        "sizes": args.sizes,
        "queries": args.queries,
        "skip": sorted(skip),
        "real_vectors_available": len(pool),
        "synthetic_per_size": synthetic,
        "queries_real": True,
        "threads": ALL_THREADS,
    }
    write_result(args.json, "ann", config, rows)


if __name__ == "__main__":
    main()
