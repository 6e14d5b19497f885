"""Ranking metrics (trec_eval through pytrec_eval): hand-computed values, the run's own order
for ties, MRR cut at rank 10, unanswered queries counted as 0, and paired t-tests."""

from __future__ import annotations

import math

import pytest

from lede.eval.metrics import METRICS, Judgments, score_runs

QRELS = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}, "q3": {"d": 1}}
# q1: a and b tie, a ranked first; q2: its one relevant document at rank 11; q3: not answered.
RUN = {
    "q1": {"x": 0.9, "a": 0.5, "b": 0.5},
    "q2": {**{f"n{i}": 1.0 - i / 100 for i in range(10)}, "c": 0.1},
}


def test_metrics_match_hand_computed_values_in_the_runs_own_order() -> None:
    values = Judgments(QRELS).per_query(RUN)
    # q1: DCG = 2/log2(3) + 1/log2(4); ideal = 2/log2(2) + 1/log2(3). trec_eval on the raw
    # scores would put b before a (ties by document id) and give 0.6199 instead.
    dcg, ideal = 2 / math.log2(3) + 1 / math.log2(4), 2 + 1 / math.log2(3)
    assert list(values["ndcg@10"]) == pytest.approx([dcg / ideal, 0.0, 0.0], abs=1e-4)
    assert dcg / ideal == pytest.approx(0.6697, abs=1e-4)
    assert list(values["map"]) == pytest.approx([(1 / 2 + 2 / 3) / 2, 1 / 11, 0.0], abs=1e-4)
    assert list(values["recall@100"]) == [1.0, 1.0, 0.0]
    assert list(values["mrr@10"]) == [0.5, 0.0, 0.0]  # rank 11 is past the cut


def test_score_runs_averages_over_judged_queries_and_tests_every_pair() -> None:
    worse = {"q1": {"x": 1.0, "y": 0.9, "b": 0.8}, "q2": {"c": 1.0}}
    metrics, significance = score_runs(QRELS, {"ours": RUN, "worse": worse, "same": RUN})
    assert metrics["ours"] == {
        "ndcg@10": round((dcg := (2 / math.log2(3) + 0.5) / (2 + 1 / math.log2(3))) / 3, 4),
        "recall@100": round(2 / 3, 4),
        "map": round(((1 / 2 + 2 / 3) / 2 + 1 / 11) / 3, 4),
        "mrr@10": round(0.5 / 3, 4),
    }
    assert dcg > 0 and metrics["worse"]["mrr@10"] == round((1 / 3 + 1) / 3, 4)
    p_values = significance["p_values"]
    assert set(p_values) == {"ours_vs_worse", "ours_vs_same", "worse_vs_same"}
    assert all(set(row) == set(METRICS) for row in p_values.values())
    assert all(0 <= p <= 1 for p in p_values["ours_vs_worse"].values())
    assert all(math.isnan(p) for p in p_values["ours_vs_same"].values())  # no difference at all
