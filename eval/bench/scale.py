"""Hybrid query latency as the corpus grows (5k, 100k and 1M chunks).

    lede bench scale --sizes 5000,100000,1000000 --json eval/results/bench_scale.json

For each size this builds the two views the service searches, with the classes it uses:
`LexicalIndex` over N synthetic chunks (120 words each drawn from Reuters' word frequencies,
as in `eval/bench/indexer.py`) and `DenseIndex` with the default "auto" factory for N vectors
(real MiniLM chunk embeddings from the evaluation cache, topped up with the fitted Gaussian of
`eval/bench/ann.py`). Each query then runs the engine's hot path one query at a time, FAISS
on one thread as in the service: MiniLM encodes a real BEIR query (in the engine's encoding
thread while BM25 runs, when BM25 has at least 50k postings to walk, as the engine decides)
and BM25 scores 4-8 frequent corpus words (long posting lists), then FAISS; each returns its
top 100; convex fusion, top 10. Each query is also run with the stages one after another
("total_serial", with its own stage times "serial_*"), in the same run, to show what the
overlap saves; which of the two runs first alternates from query to query. All sizes are
built first and measured interleaved: every query runs at every size, in a shuffled order,
so the machine's drift over the run falls on all sizes alike. Reading the 10 hits from
SQLite and highlighting them cost the same at any size and
are left out. Reports p50/p95/p99 per stage and in total, the ratio of each size's p50 to the
smallest size's (same run), and dense recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from lede.eval.bench.ann import gaussian_like, real_query_texts, real_vectors
from lede.eval.bench.indexer import reuters_vocabulary
from lede.eval.relevance import DEFAULT_CACHE
from lede.eval.report import percentiles, write_result
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.index import OVERLAP_MIN_POSTINGS, QUERY_ENCODING
from lede.indexer.ranked import RankedList
from lede.indexer.text_analysis import Analyzer
from lede.indexer.views import bm25_kernels
from lede.indexer.views.bm25 import BM25View
from lede.indexer.views.contract import ViewQuery
from lede.indexer.views.dense import DenseView
from lede.indexer.views.dense_search import DenseIndex
from lede.indexer.views.lexical import LexicalIndex
from lede.service.engine import EngineSettings
from lede.service.fusion import convex_combination, convex_weights

WORDS_PER_CHUNK = 120
DEPTH = 100
DEFAULTS = EngineSettings()


def build_lexical(size: int, vocabulary: list[str], weights: np.ndarray) -> LexicalIndex:
    lexical = LexicalIndex(Analyzer())
    rng = np.random.default_rng(size)
    for start in range(0, size, 10_000):
        rows = rng.choice(
            len(vocabulary), size=(min(10_000, size - start), WORDS_PER_CHUNK), p=weights
        )
        for offset, row in enumerate(rows):
            lexical.add(start + offset, " ".join(vocabulary[j] for j in row))
    return lexical


def build_dense(size: int, pool: np.ndarray) -> tuple[DenseIndex, np.ndarray]:
    real = pool[:size]
    extra = size - len(real)
    vectors = real if extra == 0 else np.vstack([real, gaussian_like(pool, extra, seed=size)])
    dense = DenseIndex(pool.shape[1], expected_size=size)
    if not dense.is_trained:
        wanted = min(size, max(100_000, dense.training_size))
        sample = np.random.default_rng(3).choice(size, wanted, replace=False)
        dense.train(vectors[np.sort(sample)])
    for start in range(0, size, 50_000):
        ids = np.arange(start, min(start + 50_000, size), dtype=np.int64)
        dense.add(ids, vectors[ids])
    return dense, vectors


def _recall(dense: DenseIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    found, _ = dense.search(queries, 10)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


STAGES = (
    "encode",
    "bm25",
    "encode_wait",
    "dense",
    "fusion",
    "total",
    "serial_encode",
    "serial_bm25",
    "serial_dense",
    "total_serial",
)


WEIGHTS = convex_weights(["bm25", "dense"], DEFAULTS.alpha)


def _fuse(bm25: RankedList, dense: RankedList) -> None:
    lists = {"bm25": bm25, "dense": dense}
    fused = convex_combination(lists, weights=WEIGHTS, normalization=DEFAULTS.normalization)
    sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:10]


class SizeRun:
    """One corpus size's two views and the stage times of the queries run on them."""

    def __init__(self, size: int, lexical: LexicalIndex, dense: DenseIndex) -> None:
        self.size, self.lexical, self.dense = size, lexical, dense
        self.stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
        self.overlaps = 0

    def query(
        self, embedder: SentenceTransformerEmbedder, text: str, words: str, serial_first: bool
    ) -> None:
        """Run one query the engine's way and with the stages one after another, in the
        given order (the second run of a text encodes about 0.2 ms faster, so the caller
        alternates)."""

        def encode(text: str) -> tuple[np.ndarray, float]:
            began = time.perf_counter()
            return embedder.embed([text]), (time.perf_counter() - began) * 1000

        stages = self.stages
        lexical, dense = BM25View(self.lexical), DenseView(self.dense)

        def engine_way() -> None:
            # As the engine runs a hybrid query: the encoding overlaps BM25 when BM25 has much
            # work, and comes first otherwise ("encode_wait" is then 0).
            started = time.perf_counter()
            overlapped = lexical.cost(ViewQuery(words)) >= OVERLAP_MIN_POSTINGS
            if overlapped:
                encoding = QUERY_ENCODING.submit(encode, text)
                lexical_start = started
            else:
                vector, encode_ms = encode(text)
                lexical_start = time.perf_counter()
            bm25 = lexical.search(ViewQuery(words), DEPTH, None)
            lexical_done = time.perf_counter()
            if overlapped:
                vector, encode_ms = encoding.result()
            encoded = time.perf_counter()
            found = dense.search(ViewQuery(text, vector), DEPTH, None)
            dense_done = time.perf_counter()
            _fuse(bm25, found)
            finished = time.perf_counter()
            self.overlaps += overlapped
            stages["encode"].append(encode_ms)
            for stage, begin, end in (
                ("bm25", lexical_start, lexical_done),
                ("encode_wait", lexical_done, encoded),
                ("dense", encoded, dense_done),
                ("fusion", dense_done, finished),
                ("total", started, finished),
            ):
                stages[stage].append((end - begin) * 1000)

        def serial_way() -> None:
            marks = [time.perf_counter()]
            vector, _ = encode(text)
            marks.append(time.perf_counter())
            bm25 = lexical.search(ViewQuery(words), DEPTH, None)
            marks.append(time.perf_counter())
            found = dense.search(ViewQuery(text, vector), DEPTH, None)
            marks.append(time.perf_counter())
            _fuse(bm25, found)
            marks.append(time.perf_counter())
            for stage, begin, end in zip(
                ("serial_encode", "serial_bm25", "serial_dense"), marks, marks[1:], strict=False
            ):
                stages[stage].append((end - begin) * 1000)
            stages["total_serial"].append((marks[-1] - marks[0]) * 1000)

        for way in (serial_way, engine_way) if serial_first else (engine_way, serial_way):
            way()

    def row(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "factory": self.dense.factory,
            "nprobe": self.dense.nprobe,
            "overlapped_share": round(self.overlaps / max(len(self.stages["total"]), 1), 3),
        } | {stage: percentiles(values) for stage, values in self.stages.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="5000,100000,1000000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    faiss.omp_set_num_threads(1)

    embedder = SentenceTransformerEmbedder()
    texts = real_query_texts(args.queries)
    query_vectors = embedder.embed(texts)
    vocabulary, weights = reuters_vocabulary()
    picker = random.Random(11)
    frequent = vocabulary[20:3000]
    word_queries = [" ".join(picker.sample(frequent, picker.randint(4, 8))) for _ in texts]
    pool = real_vectors(args.cache, max(sizes))
    print(f"{len(pool)} real vectors available; the rest are fitted-Gaussian", flush=True)
    embedder.embed(texts[:20])  # warm up
    bm25_kernels.warm_up()

    runs, extras = [], []
    for size in sizes:
        started = time.perf_counter()
        lexical = build_lexical(size, vocabulary, weights)
        dense, vectors = build_dense(size, pool)
        runs.append(SizeRun(size, lexical, dense))
        extras.append(
            {
                "build_s": round(time.perf_counter() - started, 1),
                "dense_recall@10": round(_recall(dense, vectors, query_vectors), 4),
                "synthetic_vectors": max(0, size - len(pool)),
            }
        )
        print(f"built {size}: {dense.factory}, {extras[-1]}", flush=True)
        del vectors
    # Every query runs at every size, in a shuffled order, so that the machine's drift over
    # the run (this VM's encoding time moves by 1-2 ms from minute to minute) falls on every
    # size alike instead of on whichever size ran last.
    order = random.Random(7)
    for number, (text, words) in enumerate(zip(texts, word_queries, strict=True)):
        for run in order.sample(runs, len(runs)):
            run.query(embedder, text, words, serial_first=number % 2 == 1)
    rows = [run.row() | extra for run, extra in zip(runs, extras, strict=True)]
    for row in rows:
        print({k: row[k] for k in ("size", "factory", "total", "dense_recall@10")}, flush=True)
    base = rows[0]["total"]["p50_ms"]
    for row in rows:
        row["total_p50_ratio_to_smallest"] = round(row["total"]["p50_ms"] / base, 3)
        row["serial_p50_ratio_to_smallest"] = round(
            row["total_serial"]["p50_ms"] / rows[0]["total_serial"]["p50_ms"], 3
        )
    write_result(
        args.json,
        "scale",
        {"sizes": sizes, "queries": len(texts), "depth": DEPTH, "faiss_threads": 1},
        {"rows": rows},
    )


if __name__ == "__main__":
    main()
