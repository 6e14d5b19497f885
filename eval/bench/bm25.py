"""Lede's lexical engine against rank-bm25 and bm25s on the same corpus and queries.

    python -m lede.eval.bench.bm25 --documents 100000 --json eval/results/bench_bm25.json

All three get the same analyzed tokens (Lede's analyzer: lowercase, stopwords, Snowball
stems) and the Lucene BM25 formula with Lede's default k1 and b: bm25s with
`method="lucene"`, rank-bm25 with Lucene's idf. Reports single-query queries/s and top-10
agreement with Lede (overlap of the top-10 id sets, averaged). Corpus: the synthetic
Reuters-vocabulary documents of `eval/bench/indexer.py`. rank-bm25 scores every document in
Python, so it runs on a subset of the queries.

    python -m lede.eval.bench.bm25 --paths 1000,5000,20000,50000,100000
        [--json eval/results/bench_bm25_paths.json]

instead times Lede's two scoring paths (`indexer/views/bm25_topk.py`: numpy, and the compiled loop)
on the first N documents for each N, alternated query by query in one process, top 10: what
the small-index threshold is chosen from (decision 46).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.bench.indexer import _synthetic
from lede.eval.lucene_bm25 import LuceneBM25
from lede.eval.report import write_result
from lede.indexer.text_analysis import Analyzer
from lede.indexer.views.lexical import LexicalIndex


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rank-bm25-queries", type=int, default=20)
    parser.add_argument("--paths", default=None, help="Comma-separated sizes: time both paths.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.paths:
        sizes = [int(size) for size in args.paths.split(",")]
        paths = compare_paths(sizes, args.queries)
        write_result(args.json, "bm25_paths", vars(args) | {"json": str(args.json)}, paths)
        return
    import bm25s

    articles, queries = _synthetic(args.documents, 120, seed=7)
    queries = queries[: args.queries]
    analyzer = Analyzer()
    tokens = [analyzer(a.text) for a in articles]
    query_tokens = [analyzer(q) for q in queries]
    figures: dict[str, Any] = {"documents": len(articles), "queries": len(queries)}

    started = time.perf_counter()
    lede = LexicalIndex(analyzer)
    k1, b = lede.settings.k1, lede.settings.b
    for doc_id, article in enumerate(articles):
        lede.add(doc_id, article.text)
    lede_build = time.perf_counter() - started
    lede_top: list[set[int]] = []
    lede.search(queries[0], 10)  # untimed: loads the compiled loops
    started = time.perf_counter()
    for query in queries:
        ids, _ = lede.search(query, 10)
        lede_top.append(set(ids.tolist()))
    lede_s = time.perf_counter() - started
    figures["lede"] = {
        "build_s": round(lede_build, 2),
        "qps": round(len(queries) / lede_s, 1),
        "incremental": True,
    }

    started = time.perf_counter()
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(tokens, show_progress=False)
    build = time.perf_counter() - started
    agreement = []
    retriever.retrieve([query_tokens[0]], k=10, show_progress=False, n_threads=1)  # untimed
    started = time.perf_counter()
    for number, analyzed in enumerate(query_tokens):
        documents, _ = retriever.retrieve([analyzed], k=10, show_progress=False, n_threads=1)
        agreement.append(len(set(np.asarray(documents[0]).tolist()) & lede_top[number]) / 10)
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    retriever.retrieve(query_tokens, k=10, show_progress=False, n_threads=1)
    batch_elapsed = time.perf_counter() - started
    figures["bm25s"] = {
        "build_s": round(build, 2),
        "qps": round(len(queries) / elapsed, 1),
        "batch_qps": round(len(queries) / batch_elapsed, 1),
        "top10_agreement_with_lede": round(float(np.mean(agreement)), 4),
        "incremental": False,
    }

    started = time.perf_counter()
    reference = LuceneBM25(tokens, k1=k1, b=b)
    build = time.perf_counter() - started
    agreement = []
    count = min(args.rank_bm25_queries, len(queries))
    started = time.perf_counter()
    for number in range(count):
        scores = reference.get_scores(query_tokens[number])
        top = np.argsort(-scores, kind="stable")[:10]
        agreement.append(len(set(top.tolist()) & lede_top[number]) / 10)
    elapsed = time.perf_counter() - started
    figures["rank_bm25"] = {
        "build_s": round(build, 2),
        "qps": round(count / elapsed, 2),
        "top10_agreement_with_lede": round(float(np.mean(agreement)), 4),
        "queries": count,
        "incremental": False,
    }
    figures["lede_speedup"] = {
        "vs_bm25s": round(figures["lede"]["qps"] / figures["bm25s"]["qps"], 2),
        "vs_bm25s_batch": round(figures["lede"]["qps"] / figures["bm25s"]["batch_qps"], 2),
        "vs_rank_bm25": round(figures["lede"]["qps"] / figures["rank_bm25"]["qps"], 1),
    }
    write_result(args.json, "bm25", vars(args) | {"json": str(args.json)}, figures)


def compare_paths(sizes: list[int], queries: int) -> dict[str, Any]:
    """p50 and mean µs of a top-10 search by each path, per corpus size, and their ratio."""
    from lede.indexer.views import bm25_kernels, bm25_topk

    bm25_kernels.warm_up()
    articles, texts = _synthetic(max(sizes), 120, seed=7)
    texts = texts[:queries]
    figures: dict[str, Any] = {"queries": len(texts), "sizes": {}}
    lede = LexicalIndex(Analyzer())
    added = 0
    for size in sorted(sizes):
        for doc_id in range(added, size):
            lede.add(doc_id, articles[doc_id].text)
        added = size
        times: dict[str, list[float]] = {"numpy": [], "compiled": []}
        for query in texts:
            for path, threshold in (("numpy", 10**12), ("compiled", -1)):
                bm25_topk.SMALL_ID_SPACE = threshold
                started = time.perf_counter()
                lede.search(query, 10)
                times[path].append((time.perf_counter() - started) * 1e6)
        p50 = {path: float(np.median(t)) for path, t in times.items()}
        row: dict[str, Any] = {
            path: {"p50_us": round(p50[path], 1), "mean_us": round(float(np.mean(t)), 1)}
            for path, t in times.items()
        }
        row["numpy_over_compiled_p50"] = round(p50["numpy"] / p50["compiled"], 2)
        figures["sizes"][str(size)] = row
        print(size, row)
    return figures


if __name__ == "__main__":
    main()
