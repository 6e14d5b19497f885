"""Ranking metrics by trec_eval (pytrec_eval), the reference implementation BEIR and Pyserini
report with, and paired significance tests between runs (scipy).

A run is scored in the order it was ranked: trec_eval is given each document's rank, not its
score, because it breaks score ties by document id while Lede's ranking keeps its own order
(RRF gives ties often). What is measured is the list a user is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytrec_eval
from scipy.stats import ttest_rel

METRICS = ["ndcg@10", "recall@100", "map", "mrr@10"]
# trec_eval's measures for METRICS; MRR@10 is its reciprocal rank cut at rank 10 (below).
_MEASURES = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100", "map": "map"}
_RR_DEPTH = 10

Run = Mapping[str, Mapping[str, float]]


class Judgments:
    """Relevance judgments, ready to score runs (trec_eval's evaluator is built once)."""

    def __init__(self, qrels: Mapping[str, Mapping[str, int]]) -> None:
        self.queries = sorted(qrels)
        table = {q: {d: int(r) for d, r in qrels[q].items()} for q in self.queries}
        self._evaluator = pytrec_eval.RelevanceEvaluator(
            table, {"ndcg_cut.10", "recall.100", "map", "recip_rank"}
        )

    def per_query(self, run: Run) -> dict[str, np.ndarray]:
        """Each metric for every judged query, in `self.queries` order (0 for a query the run
        does not answer)."""
        ranks = {
            q: {d: float(-rank) for rank, d in enumerate(run[q])}
            for q in self.queries
            if run.get(q)  # trec_eval leaves out a query with no documents; it counts 0 below
        }
        scored = self._evaluator.evaluate(ranks)
        values = {metric: np.zeros(len(self.queries)) for metric in METRICS}
        for i, query in enumerate(self.queries):
            measures = scored.get(query)
            if measures is None:
                continue
            for metric, measure in _MEASURES.items():
                values[metric][i] = measures[measure]
            rr = measures["recip_rank"]  # 1 / rank of the first relevant document
            values["mrr@10"][i] = rr if rr >= 1 / _RR_DEPTH else 0.0
        return values

    def mean(self, run: Run, metric: str) -> float:
        return float(self.per_query(run)[metric].mean())


def score_runs(
    qrels: Mapping[str, Mapping[str, int]], runs: Mapping[str, Run]
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Metrics per run (the mean over judged queries), and paired two-sided t-tests between
    every pair of runs."""
    judgments = Judgments(qrels)
    per_query = {name: judgments.per_query(run) for name, run in runs.items()}
    metrics = {
        name: {m: round(float(values[m].mean()), 4) for m in METRICS}
        for name, values in per_query.items()
    }
    significance: dict[str, Any] = {"test": "paired two-sided Student's t", "p_values": {}}
    names = list(runs)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            significance["p_values"][f"{first}_vs_{second}"] = {
                m: round(float(ttest_rel(per_query[first][m], per_query[second][m]).pvalue), 5)
                for m in METRICS
            }
    return metrics, significance
