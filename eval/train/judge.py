"""Fit the answer judge (`service/answers/judge.py`), its calibration and the threshold, on news.

Every reuters-qa question is asked of the whole Reuters index as the service asks it; the `top`
best candidates are read in their windows by the trained reader, and each is labelled by
whether the answer it would give is right (`news_qa.judge`'s rule: it cites the story or a copy
holding the answer, and its short answer or quote matches `accept`). Then:

1. the combiner is a logistic regression of "right" on the candidates' `FEATURES` (reuters-qa
   train; standardized for the fit, stored on the raw scale);
2. the calibration is Platt scaling of "the pick is right" on the pick's score and its margin
   over the runner-up, fitted on news picks the combiner was not fitted on: the out-of-fold
   picks of reuters-qa train (each scored by a combiner fitted without it) and the picks of
   reuters-qa dev; how well it holds is reported on dev by cross-validation (each dev pick's
   confidence from a calibration fitted without its fold);
3. the default threshold is chosen on reuters-qa dev: the lowest that keeps the answers given
   at least `PRECISION` right and the unanswerable questions answered at most `UNANSWERED`;
   among those, the one answering most questions rightly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lede.eval.news_qa import NewsQuestion
from lede.service.answers.answerer import Answerer, passage_texts, short_answer_of
from lede.service.answers.judge import FEATURES, Combiner, read_top
from lede.service.answers.model import Calibration
from lede.service.answers.scoring import MARGIN_CAP, capped_margin

PRECISION = 0.85
UNANSWERED = 0.20
FOLDS = 5


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    """One question's read candidates: a `FEATURES` row each, whether the answer each would
    give is right, and which pairs quote shared text (not rivals for the margin)."""

    question: NewsQuestion
    rows: np.ndarray  # candidates x features
    right: np.ndarray  # candidates, bool
    overlap: np.ndarray  # candidates x candidates, bool


def ask_for_judge(
    answerer: Answerer, questions: Sequence[NewsQuestion], texts: dict[str, str]
) -> list[AskedQuestion]:
    """Each question asked as the service asks it, its best candidates read (the judge's
    weights do not matter here: the rows are the features, before any judging)."""
    from lede.service.answers.answerer import _overlapping

    reader = answerer.model.reader
    if reader is None:
        raise ValueError(f"the answer model in {answerer.model.directory} has no reader")
    asked = []
    for question in questions:
        hits = answerer.engine.search(question.question, k=answerer.settings.passages).hits
        passages = passage_texts(hits) if hits else []
        ranked = answerer.rank(question.question, hits, passages) if hits else []
        readings = (
            read_top(reader, Combiner(), question.question, passages, ranked, reader.config.top)
            if ranked
            else []
        )
        rows, right = [], []
        for reading in readings:
            record = hits[reading.scored.passage].record
            quote = record.text[reading.quote[0] : reading.quote[1]]
            found = short_answer_of(question.question, record.text, reading)
            span = record.text[found[0] : found[1]] if found else None
            cited = record.article_id == question.article_id or question.accepts(
                texts.get(record.article_id, "")
            )
            rows.append(reading.features)
            right.append(cited and (question.accepts(span) or question.accepts(quote)))
        overlap = np.asarray(
            [[_overlapping(hits, a, b) for b in readings] for a in readings], dtype=bool
        ).reshape(len(readings), len(readings))
        asked.append(
            AskedQuestion(
                question,
                np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES)),
                np.asarray(right, dtype=bool),
                overlap,
            )
        )
    return asked


def fit_combiner(asked: Sequence[AskedQuestion], seed: int = 13, c: float = 1.0) -> Combiner:
    """Logistic regression of "this candidate's answer is right" on its features."""
    from sklearn.linear_model import LogisticRegression

    rows = np.concatenate([a.rows for a in asked if len(a.rows)])
    labels = np.concatenate([a.right for a in asked if len(a.rows)]).astype(int)
    mean, scale = rows.mean(axis=0), rows.std(axis=0)
    scale[scale == 0] = 1.0
    fitted = LogisticRegression(C=c, random_state=seed, max_iter=1000).fit(
        (rows - mean) / scale, labels
    )
    weights = fitted.coef_[0] / scale
    intercept = float(fitted.intercept_[0] - np.sum(fitted.coef_[0] * mean / scale))
    return Combiner(tuple(float(w) for w in weights), intercept)


@dataclass(frozen=True, slots=True)
class PickFigures:
    score: float
    margin: float
    right: bool
    answerable: bool


def pick(asked: AskedQuestion, combiner: Combiner) -> PickFigures:
    """The question's pick under `combiner`, as the service picks: the best score, its margin
    over the best candidate that does not quote the same text."""
    if not len(asked.rows):
        return PickFigures(-20.0, 0.0, False, asked.question.answerable)
    scores = np.asarray([combiner(row) for row in asked.rows])
    best = int(np.argmax(scores))
    rivals = scores[~asked.overlap[best]]
    margin = capped_margin(float(scores[best] - rivals.max())) if len(rivals) else MARGIN_CAP
    return PickFigures(
        float(scores[best]), margin, bool(asked.right[best]), asked.question.answerable
    )


def out_of_fold_picks(
    asked: Sequence[AskedQuestion], seed: int = 13, folds: int = FOLDS
) -> list[PickFigures]:
    """Each question's pick under a combiner fitted on the other folds."""
    order = np.random.default_rng(seed).permutation(len(asked))
    result: list[PickFigures | None] = [None] * len(asked)
    for fold in range(folds):
        held = set(order[fold::folds].tolist())
        combiner = fit_combiner([a for i, a in enumerate(asked) if i not in held], seed)
        for i in held:
            result[i] = pick(asked[i], combiner)
    return [p for p in result if p is not None]


def fit_platt(features: list[tuple[float, float]], correct: list[bool], seed: int) -> Calibration:
    """Logistic regression of "the pick is right" on the pick's (logit, margin)."""
    from sklearn.linear_model import LogisticRegression

    values = np.asarray(features, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(correct, dtype=int)
    fitted = LogisticRegression(C=1e4, random_state=seed).fit(values, labels)
    slope, margin_slope = (float(c) for c in fitted.coef_[0])
    return Calibration(slope, float(fitted.intercept_[0]), margin_slope)


def cross_validated(
    features: list[tuple[float, float]], correct: list[bool], seed: int, folds: int = 5
) -> dict[str, float]:
    """Log loss and expected calibration error of `fit_platt`, each pick predicted by a fit on
    the other folds (stratified, seeded): how well the calibration holds on unseen dev picks."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    from lede.eval.calibration import calibration

    values = np.asarray(features, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(correct, dtype=bool)
    predicted = np.zeros(len(labels))
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(values, labels)
    for train_rows, test_rows in splits:
        fitted = fit_platt([tuple(v) for v in values[train_rows]], list(labels[train_rows]), seed)
        predicted[test_rows] = [fitted(*v) for v in values[test_rows]]
    return {
        "folds": folds,
        "log_loss": round(float(log_loss(labels, predicted)), 4),
        "ece": float(calibration(predicted.tolist(), labels.tolist())["ece"]),
    }


def fit_calibration(picks: Sequence[PickFigures], seed: int = 13) -> Calibration:
    """Platt scaling of "the pick is right" on its score and margin."""
    return fit_platt([(p.score, p.margin) for p in picks], [p.right for p in picks], seed)


def trade_off(
    picks: Sequence[PickFigures], calibration: Calibration, threshold: float
) -> dict[str, Any]:
    """Answered right (of the answerable), precision of the answers given, and unanswerable
    questions answered, at `threshold`."""
    confidence = np.asarray([calibration(p.score, p.margin) for p in picks])
    right = np.asarray([p.right for p in picks], dtype=bool)
    answerable = np.asarray([p.answerable for p in picks], dtype=bool)
    given = confidence >= threshold
    return {
        "threshold": threshold,
        "answered_right": round(float((given & right)[answerable].mean()), 4),
        "precision": round(float(right[given].mean()), 4) if given.any() else None,
        "answers_given": int(given.sum()),
        "unanswerable_answered": round(float(given[~answerable].mean()), 4)
        if (~answerable).any()
        else None,
    }


def choose_threshold(
    picks: Sequence[PickFigures], calibration: Calibration
) -> tuple[float, list[dict[str, Any]]]:
    """The threshold (a multiple of 0.01) answering most questions rightly while the answers
    given are at least `PRECISION` right and at most `UNANSWERED` of the unanswerable questions
    are answered; the table of every multiple of 0.05 beside it. Without any such threshold,
    the one with the most right minus wrong answers."""
    grid = [round(t, 2) for t in np.arange(0.05, 0.96, 0.01)]
    rows = [trade_off(picks, calibration, t) for t in grid]
    allowed = [
        r
        for r in rows
        if r["precision"] is not None
        and r["precision"] >= PRECISION
        and (r["unanswerable_answered"] or 0.0) <= UNANSWERED
    ]
    if allowed:
        best = max(allowed, key=lambda r: (r["answered_right"], -r["threshold"]))
    else:
        best = max(
            rows,
            key=lambda r: r["answers_given"] * (2 * (r["precision"] or 0) - 1),
        )
    table = [r for r in rows if round(r["threshold"] * 100) % 5 == 0]
    return float(best["threshold"]), table


def dev_cross_validated(
    train_picks: Sequence[PickFigures], dev_picks: Sequence[PickFigures], seed: int = 13
) -> list[float]:
    """Each dev pick's confidence under a calibration fitted on the train picks and the other
    dev folds: how the calibration holds on news questions it was not fitted on."""
    from sklearn.model_selection import KFold

    confidences = [0.0] * len(dev_picks)
    splits = KFold(FOLDS, shuffle=True, random_state=seed).split(np.zeros(len(dev_picks)))
    for fitted_rows, held_rows in splits:
        platt = fit_calibration([*train_picks, *(dev_picks[i] for i in fitted_rows)], seed)
        for i in held_rows:
            confidences[i] = platt(dev_picks[i].score, dev_picks[i].margin)
    return confidences


def fit_judge(
    train: Sequence[AskedQuestion],
    dev: Sequence[AskedQuestion],
    seed: int = 13,
) -> tuple[Combiner, Calibration, float, dict[str, Any]]:
    """The combiner (reuters-qa train), its calibration (the out-of-fold train picks and the dev
    picks), the threshold (reuters-qa dev) and the record of how each was fitted."""
    from lede.eval.calibration import calibration as reliability
    from lede.eval.news_qa import auc

    combiner = fit_combiner(train, seed)
    held_out = out_of_fold_picks(train, seed)
    dev_picks = [pick(a, combiner) for a in dev]
    platt = fit_calibration([*held_out, *dev_picks], seed)
    threshold, table = choose_threshold(dev_picks, platt)
    right = [p.right for p in dev_picks]
    confidences = [platt(p.score, p.margin) for p in dev_picks]
    unseen = dev_cross_validated(held_out, dev_picks, seed)
    answerable = [p.right for p in dev_picks if p.answerable]
    record = {
        "data": "reuters-qa train (combiner), its out-of-fold picks and the reuters-qa dev picks "
        "(calibration), reuters-qa dev (threshold), asked of the whole Reuters-21578 index",
        "train_questions": len(train),
        "train_candidates": int(sum(len(a.rows) for a in train)),
        "dev_questions": len(dev),
        "rule": f"most answered right with precision >= {PRECISION} and unanswerable "
        f"answered <= {UNANSWERED} (reuters-qa dev)",
        "train_out_of_fold_pick_right": round(float(np.mean([p.right for p in held_out])), 4),
        "dev": {
            "best_candidate_right": round(float(np.mean(answerable)), 4) if answerable else None,
            "auc": auc(confidences, right),
            "ece": reliability(confidences, right)["ece"],
            "cross_validated": {
                "folds": FOLDS,
                "auc": auc(unseen, right),
                "ece": reliability(unseen, right)["ece"],
            },
            "at_threshold": trade_off(dev_picks, platt, threshold),
            "thresholds": table,
        },
    }
    return combiner, platt, threshold, record
