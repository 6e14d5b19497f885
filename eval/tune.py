"""Choose fusion and BM25 defaults on a dataset's *train* split (never its test qrels).

    python -m eval.tune ../shared/datasets/scifact --json eval/results/tune_scifact.json

Retrieves each train query's BM25 and dense candidates once (chunk level), then scores a grid
of fusion settings offline (chunk-level fusion, document score = best chunk, as in
`lede eval relevance`), and a grid of BM25 k1/b on BM25 alone.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

import numpy as np
from ranx import Qrels, Run, evaluate

from eval.datasets import load_beir
from eval.relevance import DEFAULT_CACHE, RelevanceConfig, open_dataset_index
from eval.report import write_result
from indexer.chunker import ChunkerSettings
from indexer.index import LedeIndex
from indexer.lexical import BM25Settings
from indexer.manifest import IndexSettings
from service.fusion import (
    NORMALIZATIONS,
    RankedList,
    convex_combination,
    reciprocal_rank_fusion,
)


def _doc_run(
    index: LedeIndex, fused: dict[int, float], article_of: dict[int, str]
) -> dict[str, float]:
    run: dict[str, float] = {}
    for chunk, score in fused.items():
        article = article_of[chunk]
        if score > run.get(article, -np.inf):
            run[article] = score
    best = sorted(run.items(), key=lambda item: -item[1])[:100]
    return dict(best) or {"__none__": 0.0}


def _ndcg(qrels: Qrels, runs: dict[str, dict[str, float]]) -> float:
    return float(evaluate(qrels, Run(runs), "ndcg@10", make_comparable=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--chunk-tokens", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    dataset = load_beir(args.dataset, args.split)
    chunker = ChunkerSettings(max_tokens=args.chunk_tokens, overlap_sentences=args.overlap)
    config = RelevanceConfig(index=IndexSettings(chunker=chunker))
    index, _ = open_dataset_index(dataset, config, DEFAULT_CACHE)
    article_of = {r.rowid: r.article_id for r in index.store.all_chunk_records()}
    qrels = Qrels(dataset.qrels)
    lists: dict[str, dict[str, RankedList]] = {}
    vectors = index.embedder.embed(list(dataset.queries.values()))
    for (query_id, text), vector in zip(dataset.queries.items(), vectors, strict=True):
        ids, scores = index.lexical.search(text, args.depth)
        dense_ids, dense_scores = index.dense.search(vector[None, :], args.depth)
        lists[query_id] = {
            "bm25": RankedList(ids.tolist(), scores.tolist(), truncated=len(ids) >= args.depth),
            "dense": RankedList(dense_ids[0].tolist(), dense_scores[0].tolist()),
        }
    results: dict[str, Any] = {"queries": len(dataset.queries), "split": args.split}

    def score(fuse: Any) -> float:
        return _ndcg(
            qrels, {q: _doc_run(index, fuse(pair), article_of) for q, pair in lists.items()}
        )

    results["bm25_only"] = round(
        score(lambda lists_: dict(zip(lists_["bm25"].ids, lists_["bm25"].scores, strict=True))), 4
    )
    results["dense_only"] = round(
        score(lambda lists_: dict(zip(lists_["dense"].ids, lists_["dense"].scores, strict=True))), 4
    )
    rrf = []
    for k, dense_weight in itertools.product(
        (5, 10, 20, 40, 60, 100), (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
    ):
        weights = {"bm25": 1.0, "dense": dense_weight}
        value = score(lambda lists_, k=k, w=weights: reciprocal_rank_fusion(lists_, k=k, weights=w))
        rrf.append({"rrf_k": k, "dense_weight": dense_weight, "ndcg@10": round(value, 4)})
    convex = []
    for normalization, alpha in itertools.product(
        NORMALIZATIONS, np.round(np.arange(0.2, 0.85, 0.05), 2)
    ):
        value = score(
            lambda lists_, a=float(alpha), n=normalization: convex_combination(
                lists_, alpha=a, normalization=n
            )
        )
        convex.append(
            {"normalization": normalization, "alpha": float(alpha), "ndcg@10": round(value, 4)}
        )
    results["rrf"] = sorted(rrf, key=lambda r: -r["ndcg@10"])
    results["convex"] = sorted(convex, key=lambda r: -r["ndcg@10"])
    bm25_grid = []
    original = index.lexical.settings
    for k1, b in itertools.product((0.6, 0.9, 1.2, 1.5), (0.4, 0.6, 0.75, 0.9)):
        index.lexical.settings = BM25Settings(k1=k1, b=b)
        runs = {}
        for query_id, text in dataset.queries.items():
            ids, scores = index.lexical.search(text, args.depth)
            runs[query_id] = _doc_run(
                index, dict(zip(ids.tolist(), scores.tolist(), strict=True)), article_of
            )
        bm25_grid.append({"k1": k1, "b": b, "ndcg@10": round(_ndcg(qrels, runs), 4)})
    index.lexical.settings = original
    results["bm25"] = sorted(bm25_grid, key=lambda r: -r["ndcg@10"])
    index.close()
    write_result(
        args.json,
        "tune",
        {
            "dataset": str(args.dataset),
            "split": args.split,
            "depth": args.depth,
            "chunk_tokens": args.chunk_tokens,
            "overlap": args.overlap,
        },
        results,
    )


if __name__ == "__main__":
    main()
