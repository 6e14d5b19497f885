"""Dev-only check: which extra feature, added to the answer model's cross-encoder logit, ranks
answer sentences better? (Issue 15: coverage was tried and not adopted, decision 47; the
bi-encoder similarity was adopted, decision 48.)

    python -m lede.eval.answer_features [--weights 0,0.5,1,2,3,4,6,8,12,16,20]
        [--tops 2,3,4,5,6,8] [--json eval/results/answer_features_dev.json]

For each answerable question of WikiQA dev and TrecQA dev (clean), every candidate sentence is
scored by the bundled cross-encoder alone and ranked by `logit + w x feature`, for three
features: the share of the question's analyzed terms in the sentence, idf-weighted over the
question's own candidates (as the service's shortlist weighs them) or plain; and the base
model's bi-encoder cosine of the question and `title | sentence`, over every candidate or, as
the service adds it (`similarity_weight`), over only the few best by logit (`--tops`; the
service re-scores `SIMILARITY_TOP`).
Reports MAP / MRR per feature and weight. Only dev splits are read.
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
from lede.service.answers.model import SIMILARITY_TOP, AnswerModel, add_similarity, top_rows
from lede.service.answers.scoring import term_coverage

ANALYZE = Analyzer()  # the service's shortlist analyzes with the same defaults
FEATURES = ("idf", "plain", "similarity")


def features(model: AnswerModel, question: SelectionQuestion) -> dict[str, np.ndarray]:
    """The cross-encoder's logit and each feature, per sentence of the question."""
    candidates = [(question.title, s) for s in question.sentences]
    asked = set(ANALYZE(question.question))
    plain = [len(asked & set(ANALYZE(s))) / max(1, len(asked)) for s in question.sentences]
    logit = model.cross_logits(question.question, candidates)
    similarity = model.similarities(question.question, candidates)
    top = top_rows(logit, SIMILARITY_TOP)
    return {
        "logit": logit,
        # the service's score: the logit with the model's own similarity term
        "service": add_similarity(logit, top, similarity[top], model.config.similarity_weight),
        "idf": np.asarray(term_coverage(question.question, question.sentences)),
        "plain": np.asarray(plain),
        "similarity": similarity,
    }


def _score(row: dict[str, np.ndarray], feature: str, weight: float) -> np.ndarray:
    if feature.startswith("similarity_top"):  # as the service scores: the top few re-scored
        rows = top_rows(row["logit"], int(feature.removeprefix("similarity_top")))
        return add_similarity(row["logit"], rows, row["similarity"][rows], weight)
    return row["logit"] + weight * row[feature]


def _lookup(scores: dict[str, np.ndarray]) -> Callable[[SelectionQuestion], list[float]]:
    return lambda question: scores[question.question_id].tolist()


def sweep(weights: list[float], tops: list[int]) -> dict[str, Any]:
    model = AnswerModel()
    figures: dict[str, Any] = {}
    for name in ("wikiqa", "trecqa"):
        questions = [
            q for q in load_selection(SHARED_DATASETS / name / "qa" / "dev.jsonl") if q.answerable
        ]
        scored = {q.question_id: features(model, q) for q in questions}
        for feature in (*FEATURES, *(f"similarity_top{top}" for top in tops)):
            for weight in weights:
                ranked = {key: _score(row, feature, weight) for key, row in scored.items()}
                metrics = ranking_metrics(questions, _lookup(ranked))
                figures.setdefault(f"{feature} {weight:g}", {})[f"{name}_dev"] = metrics
    for row in figures.values():
        row["mean_map"] = round(float(np.mean([m["map"] for m in row.values()])), 4)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="0,0.5,1,2,3,4,6,8,12,16,20")
    parser.add_argument(
        "--tops",
        default="2,3,4,5,6,8",
        help="re-score only this many best candidates by the similarity (the service: "
        f"{SIMILARITY_TOP})",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",")]
    figures = sweep(weights, [int(t) for t in args.tops.split(",")])
    for key, row in figures.items():
        print(key, row["mean_map"], {k: v for k, v in row.items() if k != "mean_map"})
    write_result(args.json, "answer_features_dev", vars(args) | {"json": str(args.json)}, figures)


if __name__ == "__main__":
    main()
