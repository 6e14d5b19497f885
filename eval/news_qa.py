"""News questions answered end to end: `reuters-qa` asked of an index of the whole Reuters-21578
corpus, through the same `Answerer` that `POST /answer` runs, at the default settings.

An answer is *right* when its first citation is the question's story (or another story whose
text also holds the answer: the corpus repeats wires), and its short answer or its quoted
sentence matches the question's `accept` pattern. Every question is asked once at threshold 0:
the pick does not depend on the threshold, which only decides whether it is given, so one run
yields the default's figures, the best candidate's, and the whole threshold trade-off.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.calibration import calibration
from lede.eval.datasets import SHARED_DATASETS, BeirDataset
from lede.eval.relevance import DEFAULT_CACHE, RelevanceConfig, open_dataset_index
from lede.indexer.directory import Index
from lede.service.answers.answerer import Answer, Answerer

REUTERS = SHARED_DATASETS / "reuters21578"
REUTERS_QA = SHARED_DATASETS / "reuters-qa"
THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.0, 0.96, 0.05))


@dataclass(frozen=True, slots=True)
class NewsQuestion:
    """One `reuters-qa` record (offsets index the story's text)."""

    id: str
    article_id: str
    question: str
    answerable: bool
    type: str
    answer: str | None
    answer_start: int | None
    answer_end: int | None
    sentence_start: int | None
    sentence_end: int | None
    alternatives: tuple[str, ...]
    accept: re.Pattern[str] | None

    def accepts(self, text: str | None) -> bool:
        """Whether `text` holds a right short answer (never, for an unanswerable question)."""
        return bool(text) and self.accept is not None and bool(self.accept.search(text or ""))


def load_news_questions(path: Path) -> list[NewsQuestion]:
    """Read a `reuters-qa` split (`train.jsonl` or `dev.jsonl`).

    Raises:
        ValueError: a line that is not a reuters-qa record, naming the file and line.
    """
    questions = []
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                answer, sentence = raw["answer"], raw["sentence"]
                questions.append(
                    NewsQuestion(
                        id=str(raw["id"]),
                        article_id=str(raw["article_id"]),
                        question=str(raw["question"]),
                        answerable=bool(raw["answerable"]),
                        type=str(raw["type"]),
                        answer=answer["text"] if answer else None,
                        answer_start=answer["start"] if answer else None,
                        answer_end=answer["end"] if answer else None,
                        sentence_start=sentence["start"] if sentence else None,
                        sentence_end=sentence["end"] if sentence else None,
                        alternatives=tuple(raw.get("alternatives") or ()),
                        accept=re.compile(raw["accept"], re.I) if raw.get("accept") else None,
                    )
                )
            except (KeyError, TypeError, ValueError, re.error) as error:
                raise ValueError(f"{path}:{number}: not a reuters-qa record: {error}") from error
    return questions


def story_texts(corpus: Path = REUTERS / "corpus.jsonl", field: str = "text") -> dict[str, str]:
    """Every story's text (or another field) by id (to accept a citation of a repeated wire)."""
    texts = {}
    with corpus.open() as handle:
        for line in handle:
            record = json.loads(line)
            texts[str(record["_id"])] = record.get(field) or ""
    return texts


def story_titles(corpus: Path = REUTERS / "corpus.jsonl") -> dict[str, str]:
    return story_texts(corpus, "title")


def open_reuters_index(cache: Path = DEFAULT_CACHE, corpus: Path = REUTERS) -> tuple[Index, float]:
    """The whole corpus indexed at the default settings (built once, then reused from `cache`)."""
    return open_dataset_index(BeirDataset(corpus.name, corpus, {}, {}), RelevanceConfig(), cache)


@dataclass(frozen=True, slots=True)
class Judged:
    """How one question was answered (at threshold 0: the best candidate)."""

    question: NewsQuestion
    confidence: float
    right: bool  # cites the story (or a copy holding the answer), and the answer matches
    span_right: bool  # the short answer alone matches, with the citation right
    gold_retrieved: bool  # the question's story is among the passages read
    cited: str | None
    answer: str | None
    span: str | None
    took_ms: float


def judge(question: NewsQuestion, answer: Answer, texts: dict[str, str], took_ms: float) -> Judged:
    top = answer.citations[0] if answer.citations else None
    cited = top.hit.record.article_id if top else None
    citation_right = cited is not None and (
        cited == question.article_id or question.accepts(texts.get(cited, ""))
    )
    span = answer.answer_span.text if answer.answer_span else None
    span_right = citation_right and question.accepts(span)
    sentence_right = citation_right and question.accepts(top.quote if top else None)
    return Judged(
        question=question,
        confidence=answer.confidence,
        right=span_right or sentence_right,
        span_right=span_right,
        gold_retrieved=any(h.record.article_id == question.article_id for h in answer.passages),
        cited=cited,
        answer=answer.answer,
        span=span,
        took_ms=took_ms,
    )


def ask_all(
    answerer: Answerer, questions: Iterable[NewsQuestion], texts: dict[str, str]
) -> list[Judged]:
    """Each question asked as `POST /answer` asks it (default mode, passages, filters none)."""
    judged = []
    for question in questions:
        started = time.perf_counter()
        answer = answerer.ask(question.question, threshold=0.0)
        judged.append(judge(question, answer, texts, (time.perf_counter() - started) * 1000))
    return judged


def _share(values: Iterable[bool]) -> float | None:
    items = list(values)
    return round(float(np.mean(items)), 4) if items else None


def auc(confidences: Sequence[float], right: Sequence[bool]) -> float | None:
    """ROC AUC of the confidence between right and wrong picks (None without both kinds)."""
    if len(set(right)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(np.asarray(right, dtype=int), confidences)), 4)


def at_threshold(judged: Sequence[Judged], threshold: float) -> dict[str, Any]:
    """What answering at `threshold` gives: answered right (of the answerable questions),
    precision of the answers given, and the unanswerable questions answered."""
    answerable = [j for j in judged if j.question.answerable]
    unanswerable = [j for j in judged if not j.question.answerable]
    given = [j for j in judged if j.confidence >= threshold]
    return {
        "threshold": threshold,
        "answered_right": _share(j.right and j.confidence >= threshold for j in answerable),
        "precision": _share(j.right for j in given),
        "answers_given": len(given),
        "unanswerable_answered": _share(j.confidence >= threshold for j in unanswerable),
    }


def summarize(judged: Sequence[Judged], threshold: float) -> dict[str, Any]:
    """The figures of one group of questions at the default `threshold`."""
    answerable = [j for j in judged if j.question.answerable]
    confidences = [j.confidence for j in judged]
    right = [j.right for j in judged]
    return {
        "questions": len(judged),
        "answerable": len(answerable),
        **at_threshold(judged, threshold),
        "best_candidate_right": _share(j.right for j in answerable),
        "short_answer_right": _share(j.span_right for j in answerable),
        "gold_story_retrieved": _share(j.gold_retrieved for j in answerable),
        "auc": auc(confidences, right),
        "ece": calibration(confidences, right)["ece"] if judged else None,
    }


def news_report(judged: Sequence[Judged], threshold: float) -> dict[str, Any]:
    """All figures: overall, per question type, the reliability table and the trade-off."""
    types = sorted({j.question.type for j in judged})
    latencies = [j.took_ms for j in judged]
    return {
        **summarize(judged, threshold),
        "ask_p50_ms": round(float(np.percentile(latencies, 50)), 2) if latencies else None,
        "by_type": {
            t: summarize([j for j in judged if j.question.type == t], threshold) for t in types
        },
        "calibration": calibration([j.confidence for j in judged], [j.right for j in judged]),
        "thresholds": [at_threshold(judged, t) for t in THRESHOLDS],
    }


def evaluate_news(
    answerer: Answerer,
    questions: Sequence[NewsQuestion],
    texts: dict[str, str],
) -> tuple[dict[str, Any], list[Judged]]:
    judged = ask_all(answerer, questions, texts)
    return news_report(judged, answerer.threshold), judged


def judged_rows(judged: Sequence[Judged]) -> list[dict[str, Any]]:
    """One JSON row per question, for reading the answers behind the figures."""
    return [
        {
            "id": j.question.id,
            "type": j.question.type,
            "answerable": j.question.answerable,
            "confidence": round(j.confidence, 4),
            "right": j.right,
            "span_right": j.span_right,
            "gold_retrieved": j.gold_retrieved,
            "cited": j.cited,
            "span": j.span,
            "answer": j.answer,
        }
        for j in judged
    ]
