"""Dev-only check: would the question's term coverage, added to the answer model's logit, rank
answer sentences better? (Tried for issue 15 and not adopted: decision 47.)

    python -m lede.eval.answer_coverage [--weights 0,0.5,1,2,3,4,6]
        [--json eval/results/answer_coverage_dev.json]

For each answerable question of WikiQA dev and TrecQA dev (clean), every candidate sentence is
scored by the bundled answer model and ranked by `logit + w x coverage`, where coverage is the
share of the question's analyzed terms in the sentence, either idf-weighted over the question's
own candidates (as the service's shortlist weighs them) or plain. Reports MAP / MRR per weight.
Only dev splits are read.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.answer_selection import SelectionQuestion, load_selection, ranking_metrics
from lede.eval.datasets import SHARED_DATASETS
from lede.eval.report import write_result
from lede.indexer.text_analysis import Analyzer
from lede.service.answer_model import AnswerModel
from lede.service.answer_scoring import term_coverage

ANALYZE = Analyzer()  # the service's shortlist analyzes with the same defaults


def coverages(question: SelectionQuestion) -> tuple[np.ndarray, np.ndarray]:
    """Each sentence's idf-weighted (as the service's shortlist weighs them) and plain share of
    the question's terms."""
    asked = set(ANALYZE(question.question))
    plain = [len(asked & set(ANALYZE(s))) / max(1, len(asked)) for s in question.sentences]
    return np.asarray(term_coverage(question.question, question.sentences)), np.asarray(plain)


def _lookup(scores: dict[str, np.ndarray]) -> Callable[[SelectionQuestion], list[float]]:
    return lambda question: scores[question.question_id].tolist()


def sweep(weights: list[float]) -> dict[str, Any]:
    model = AnswerModel()
    figures: dict[str, Any] = {}
    for name in ("wikiqa", "trecqa"):
        questions = [
            q for q in load_selection(SHARED_DATASETS / name / "qa" / "dev.jsonl") if q.answerable
        ]
        scored = {
            q.question_id: (
                model.logits(q.question, [(q.title, s) for s in q.sentences]),
                *coverages(q),
            )
            for q in questions
        }
        for feature, column in (("idf", 1), ("plain", 2)):
            for weight in weights:
                ranked = {key: row[0] + weight * row[column] for key, row in scored.items()}
                metrics = ranking_metrics(questions, _lookup(ranked))
                figures.setdefault(f"{feature} {weight:g}", {})[f"{name}_dev"] = metrics
    for row in figures.values():
        row["mean_map"] = round(float(np.mean([m["map"] for m in row.values()])), 4)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="0,0.5,1,2,3,4,6")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    figures = sweep([float(w) for w in args.weights.split(",")])
    for key, row in figures.items():
        print(key, row["mean_map"], {k: v for k, v in row.items() if k != "mean_map"})
    write_result(args.json, "answer_coverage_dev", vars(args) | {"json": str(args.json)}, figures)


if __name__ == "__main__":
    main()
