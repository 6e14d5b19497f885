"""What the abstention threshold trades, end to end on dev (decision 49).

    python -m lede.eval.answer_threshold [--json eval/results/answer_threshold_dev.json]

Asks every WikiQA dev question of the index of WikiQA train + dev pages (the dev end-to-end
set of `lede.eval.answer_prior`) as the service does, twice: with every page there, and with
the question's own page filtered out ("not indexed"). For each threshold it reports, of the
answerable questions, the share answered rightly (a correct sentence of the question's own page)
and wrongly; the share of the questions whose page lacks the answer ("same topic": a page about
it without the fact) answered anyway; and the share of the not-indexed questions answered
anyway. Then how well the service's confidence tells right answers from wrong on all these picks
(ROC AUC), beside logistic fits on more of the pick (its bi-encoder similarity, its passage's
retrieval score), each cross-validated on the same picks: whether a richer calibration would
separate them better, and what each would answer rightly at the lowest threshold that keeps the
same-topic questions answered within the 10% budget (decision 50). Only train and dev data are
read.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.answer_prior import correct_sentences, pages_index, wikiqa_pages
from lede.eval.datasets import SHARED_DATASETS
from lede.eval.relevance import DEFAULT_CACHE
from lede.eval.report import write_result
from lede.indexer.filters import Filters
from lede.service.answers import Answerer, pick_margin, retrieval_priors
from lede.service.engine import SearchEngine

THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.2, 0.81, 0.05))
FINE_THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.05, 0.96, 0.01))
# Issue 15 bounds answers to questions without one at 10%; the same-topic group is the hard case.
SAME_TOPIC_BUDGET = 0.10
FEATURES = (
    ("logit", "margin"),
    ("logit", "margin", "similarity"),
    ("logit", "margin", "prior"),
    ("logit", "margin", "similarity", "prior"),
)


@dataclass(frozen=True, slots=True)
class Pick:
    """The service's best candidate for one question, asked one way."""

    indexed: bool  # False: the question's own page filtered out
    answerable: bool  # the question has a correct sentence on its page
    right: bool
    confidence: float
    logit: float = -20.0  # no candidate at all: a very low logit, as `best_candidates`
    margin: float = 0.0
    similarity: float = 0.0  # bi-encoder cosine of the question and the pick
    prior: float = 0.0  # the pick's passage's retrieval score relative to the best's


def ask(answerer: Answerer, item: dict[str, Any], others: tuple[str, ...] | None) -> Pick:
    """`item` asked end to end (of the pages in `others` only, when given)."""
    question, page = item["question"], item["document_id"]
    correct = correct_sentences(item)
    filters = Filters(article_ids=others) if others is not None else None
    search = answerer.engine.search(question, k=answerer.settings.passages, filters=filters)
    hits = search.hits
    ranked = answerer.rank(question, hits) if hits else []
    if not ranked:
        return Pick(others is None, bool(correct), False, 0.0)
    best = ranked[0]
    hit = hits[best.passage]
    text = hit.record.text[best.start : best.end]
    over = pick_margin(ranked, hits)
    return Pick(
        others is None,
        bool(correct),
        hit.record.article_id == page and any(c in text for c in correct),
        answerer.model.confidence(best.logit, over),
        best.logit,
        over,
        float(answerer.model.similarities(question, [(hit.record.title, text)])[0]),
        retrieval_priors(hits)[best.passage],
    )


def collect(answerer: Answerer, items: list[dict[str, Any]], pages: list[str]) -> list[Pick]:
    """Each question asked with every page indexed, then without its own page."""
    picks = []
    for item in items:
        picks.append(ask(answerer, item, None))
        picks.append(ask(answerer, item, tuple(p for p in pages if p != item["document_id"])))
    return picks


def curve(picks: list[Pick], thresholds: tuple[float, ...] = THRESHOLDS) -> list[dict[str, Any]]:
    """Per threshold: answerable questions answered rightly / wrongly, same-topic questions
    without an answer and not-indexed questions answered anyway (shares of each group)."""
    answerable = [p for p in picks if p.indexed and p.answerable]
    same_topic = [p for p in picks if p.indexed and not p.answerable]
    absent = [p for p in picks if not p.indexed]

    def share(group: list[Pick], threshold: float, right: bool | None = None) -> float | None:
        if not group:
            return None
        chosen = [p.confidence >= threshold and right in (None, p.right) for p in group]
        return round(float(np.mean(chosen)), 4)

    return [
        {
            "threshold": t,
            "answerable_right": share(answerable, t, True),
            "answerable_wrong": share(answerable, t, False),
            "same_topic_answered": share(same_topic, t),
            "not_indexed_answered": share(absent, t),
        }
        for t in thresholds
    ]


def at_budget(picks: list[Pick], budget: float = SAME_TOPIC_BUDGET) -> dict[str, Any] | None:
    """The curve's row at the lowest threshold (0.01 steps) that answers at most `budget` of the
    same-topic questions: what a confidence buys when that budget sets the threshold."""
    rows = [r for r in curve(picks, FINE_THRESHOLDS) if (r["same_topic_answered"] or 0) <= budget]
    return min(rows, key=lambda r: float(r["threshold"])) if rows else None


def separation(picks: list[Pick], seed: int = 13, folds: int = 5) -> dict[str, Any]:
    """ROC AUC of the service's confidence over every pick, and of logistic fits on each
    feature set in `FEATURES` (predicted out of fold: stratified, seeded), with their log loss
    and their row of the curve at the same-topic budget (`at_budget`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray([p.right for p in picks], dtype=int)
    result: dict[str, Any] = {
        "picks": len(picks),
        "right": int(labels.sum()),
        "service_confidence_auc": round(
            float(roc_auc_score(labels, [p.confidence for p in picks])), 4
        ),
        "service_at_budget": at_budget(picks),
    }
    for names in FEATURES:
        values = np.asarray([[getattr(p, n) for n in names] for p in picks], dtype=np.float64)
        predicted = np.zeros(len(labels))
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(values, labels)
        for train_rows, test_rows in splits:
            fitted = LogisticRegression(C=1e4, max_iter=1000, random_state=seed)
            fitted.fit(values[train_rows], labels[train_rows])
            predicted[test_rows] = fitted.predict_proba(values[test_rows])[:, 1]
        result[" + ".join(names)] = {
            "auc": round(float(roc_auc_score(labels, predicted)), 4),
            "log_loss": round(float(log_loss(labels, predicted)), 4),
            "at_budget": at_budget(
                [
                    dataclasses.replace(p, confidence=float(c))
                    for p, c in zip(picks, predicted, strict=True)
                ]
            ),
        }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="the first N dev questions")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    pages, items = wikiqa_pages(SHARED_DATASETS / "wikiqa" / "qa", answerable=False)
    with pages_index(pages, DEFAULT_CACHE / "wikiqa-pages") as index:
        answerer = Answerer(SearchEngine(index))
        answerer.warm_up()
        picks = collect(answerer, items[: args.limit], list(pages))
        threshold = answerer.threshold
    figures = {
        "questions": len(items[: args.limit]),
        "answerable": sum(p.indexed and p.answerable for p in picks),
        "default_threshold": threshold,
        "curve": curve(picks),
        "separation": separation(picks),
    }
    write_result(args.json, "answer_threshold_dev", vars(args) | {"json": str(args.json)}, figures)


if __name__ == "__main__":
    main()
