"""Choose fusion and BM25 defaults on datasets' *train* splits (never their test qrels).

    python -m lede.eval.tune ../shared/datasets/scifact ../shared/datasets/wikiqa \\
        --json eval/results/tune.json

SciFact's train split is `extras/`; WikiQA's is `qa/train.jsonl`, turned into a BEIR view of
its own sentences (`eval.datasets.answer_selection_view`). For each dataset this retrieves
every train query's dense candidates once and its BM25 candidates once per BM25 setting
(chunk level), then scores offline, as `lede eval relevance` does (chunk-level fusion,
document score = best chunk):

- a joint grid of BM25 k1 x b x the dense share α of max-scaled convex fusion;
- at the current BM25 defaults, min-max convex fusion and RRF over their own grids.

Settings are ranked by the mean nDCG@10 over the datasets, so a default is not picked for one
collection at another's expense; each dataset's own figures are kept beside the mean.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.datasets import load_beir
from lede.eval.metrics import Judgments
from lede.eval.relevance import DEFAULT_CACHE, RelevanceConfig, open_dataset_index
from lede.eval.report import write_result
from lede.indexer.chunker import ChunkerSettings
from lede.indexer.index import LedeIndex
from lede.indexer.manifest import IndexSettings
from lede.indexer.ranked import RankedList
from lede.indexer.searchable import RetrievalRequest
from lede.indexer.views.bm25 import BM25View
from lede.indexer.views.contract import ViewQuery
from lede.indexer.views.lexical import BM25Settings
from lede.service.fusion import (
    Normalization,
    convex_combination,
    convex_weights,
    reciprocal_rank_fusion,
)

K1S = (0.6, 0.9, 1.2, 1.5)
BS = (0.0, 0.2, 0.4, 0.6, 0.75, 0.9)
ALPHAS = tuple(float(a) for a in np.round(np.arange(0.5, 0.9, 0.05), 2))
MINMAX_ALPHAS = tuple(float(a) for a in np.round(np.arange(0.2, 0.85, 0.05), 2))
RRF_GRID = tuple(itertools.product((5, 10, 20, 40, 60, 100), (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)))

Fuse = Callable[[dict[str, RankedList]], dict[int, float]]


class TrainSplit:
    """One dataset's train queries with their dense candidates, scored offline."""

    def __init__(
        self,
        path: Path,
        split: str,
        config: RelevanceConfig,
        depth: int = 100,
        cache: Path = DEFAULT_CACHE,
    ):
        dataset = load_beir(path, split, views=cache / "views")
        self.name = path.name
        self.queries = dataset.queries
        self.depth = depth
        index, _ = open_dataset_index(dataset, config, cache)
        assert isinstance(index, LedeIndex), "tuning re-scores one index's own BM25 postings"
        self.index = index
        self.judgments = Judgments(dataset.qrels)
        self.dense: dict[str, RankedList] = {}
        for query_id, text in self.queries.items():
            request = RetrievalRequest(text, ("dense",), depth)
            self.dense[query_id] = self.index.retrieve(request).lists["dense"]
        self.article_of: dict[int, str] = {}

    def _article_of(self, chunks: list[int]) -> None:
        """Remember the articles of these chunks (read from the index once each)."""
        unknown = [chunk for chunk in chunks if chunk not in self.article_of]
        records = self.index.records(unknown)
        self.article_of.update({chunk: record.article_id for chunk, record in records.items()})

    def bm25(self, settings: BM25Settings) -> dict[str, RankedList]:
        """BM25's lists with other k1 and b, scored over the index's own postings."""
        lexical = self.index.view("bm25", BM25View).lexical.with_settings(settings)
        view = BM25View(lexical)
        return {
            query_id: view.search(ViewQuery(text), self.depth, None)
            for query_id, text in self.queries.items()
        }

    def ndcg(self, bm25: dict[str, RankedList], fuse: Fuse) -> float:
        runs = {q: self._doc_run(fuse({"bm25": bm25[q], "dense": self.dense[q]})) for q in bm25}
        return self.judgments.mean(runs, "ndcg@10")

    def _doc_run(self, fused: dict[int, float]) -> dict[str, float]:
        self._article_of(list(fused))
        run: dict[str, float] = {}
        for chunk, score in fused.items():
            article = self.article_of[chunk]
            if score > run.get(article, -np.inf):
                run[article] = score
        best = sorted(run.items(), key=lambda item: -item[1])[:100]
        return dict(best)


def _single(name: str) -> Fuse:
    return lambda lists: dict(zip(lists[name].ids, lists[name].scores, strict=True))


def _convex(alpha: float, normalization: Normalization = "max") -> Fuse:
    weights = convex_weights(["bm25", "dense"], alpha)
    return lambda lists: convex_combination(lists, weights=weights, normalization=normalization)


def _rrf(k: int, dense_weight: float) -> Fuse:
    weights = {"bm25": 1.0, "dense": dense_weight}
    return lambda lists: reciprocal_rank_fusion(lists, k=k, weights=weights)


def _ranked(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    for row in rows:
        row["mean"] = round(float(np.mean([row[name] for name in names])), 4)
    return sorted(rows, key=lambda row: -row["mean"])


def tune(splits: list[TrainSplit], defaults: BM25Settings) -> dict[str, Any]:
    names = [split.name for split in splits]
    joint: list[dict[str, Any]] = []
    bm25_only: list[dict[str, Any]] = []
    for k1, b in itertools.product(K1S, BS):
        lists = {split.name: split.bm25(BM25Settings(k1=k1, b=b)) for split in splits}
        row: dict[str, Any] = {"k1": k1, "b": b}
        bm25_only.append(
            row | {s.name: round(s.ndcg(lists[s.name], _single("bm25")), 4) for s in splits}
        )
        for alpha in ALPHAS:
            scores = {s.name: round(s.ndcg(lists[s.name], _convex(alpha)), 4) for s in splits}
            joint.append(row | {"alpha": alpha} | scores)
    at_defaults = {split.name: split.bm25(defaults) for split in splits}
    dense_only = {s.name: round(s.ndcg(at_defaults[s.name], _single("dense")), 4) for s in splits}

    def at_bm25_defaults(fuse: Fuse) -> dict[str, float]:
        return {s.name: round(s.ndcg(at_defaults[s.name], fuse), 4) for s in splits}

    minmax = [
        {"alpha": alpha} | at_bm25_defaults(_convex(alpha, "minmax")) for alpha in MINMAX_ALPHAS
    ]
    rrf = [
        {"rrf_k": k, "dense_weight": weight} | at_bm25_defaults(_rrf(k, weight))
        for k, weight in RRF_GRID
    ]
    return {
        "datasets": {s.name: {"queries": len(s.queries)} for s in splits},
        "dense_only": dense_only,
        "bm25_only": _ranked(bm25_only, names),
        "convex_max": _ranked(joint, names),
        "convex_minmax_at_bm25_defaults": _ranked(minmax, names),
        "rrf_at_bm25_defaults": _ranked(rrf, names),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", type=Path, nargs="+")
    parser.add_argument("--split", default="train")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--chunk-tokens", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    chunker = ChunkerSettings(max_tokens=args.chunk_tokens, overlap_sentences=args.overlap)
    config = RelevanceConfig(index=IndexSettings(chunker=chunker))
    splits = [TrainSplit(path, args.split, config, args.depth) for path in args.datasets]
    try:
        results = tune(splits, config.index.bm25)
    finally:
        for split in splits:
            split.index.close()
    for name in ("convex_max", "bm25_only"):
        print(name, results[name][:5])
    write_result(
        args.json,
        "tune",
        {
            "datasets": [str(path) for path in args.datasets],
            "split": args.split,
            "depth": args.depth,
            "index": asdict(config.index),
        },
        results,
    )


if __name__ == "__main__":
    main()
