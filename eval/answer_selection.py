"""Answer-sentence selection data (WikiQA, TrecQA) and its ranking metrics (MAP, MRR)."""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lede.service.answers.answerer import judge_picks, quotes_overlap
from lede.service.answers.model import AnswerModel
from lede.service.answers.scoring import PassageText, score_candidates

_NUM = re.compile(r"<num>")


@dataclass(frozen=True, slots=True)
class SelectionQuestion:
    """A question with its candidate sentences in document order (WikiQA) or file order."""

    question_id: str
    question: str
    title: str
    sentences: tuple[str, ...]
    labels: tuple[int, ...]

    @property
    def answerable(self) -> bool:
        return any(self.labels)


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file (gzipped when it ends in `.gz`), blank lines skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _sentence_order(sentence_id: str) -> int:
    tail = sentence_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def load_selection(path: Path, *, seed: int = 0) -> list[SelectionQuestion]:
    """Read a WikiQA-layout file. TrecQA's train split writes every number as `<num>`; each
    one becomes a random number (seeded), so a model never learns that token."""
    rng = random.Random(seed)

    def numbers(text: str) -> str:
        return _NUM.sub(
            lambda _: str(rng.choice((rng.randint(2, 99), rng.randint(1900, 2010)))), text
        )

    questions = []
    for item in _json_lines(path):
        candidates = sorted(item["candidates"], key=lambda c: _sentence_order(c["sentence_id"]))
        questions.append(
            SelectionQuestion(
                question_id=str(item["question_id"]),
                question=numbers(item["question"]),
                title=item.get("document_title") or "",
                sentences=tuple(numbers(c["sentence"]) for c in candidates),
                labels=tuple(int(c["label"]) for c in candidates),
            )
        )
    return questions


def ranking_metrics(
    questions: Sequence[SelectionQuestion],
    score: Callable[[SelectionQuestion], Sequence[float]],
    *,
    seed: int = 0,
) -> dict[str, float | int]:
    """MAP and MRR over the questions that have a correct candidate (the standard protocol).

    Ties are broken at random (seeded): TrecQA lists each question's correct candidates first,
    so a stable sort would reward a scorer that gives every candidate the same score.
    """
    rng = random.Random(seed)
    average_precisions, reciprocal_ranks = [], []
    for question in questions:
        if not question.answerable:
            continue
        scores = np.asarray(score(question), dtype=np.float64)
        shuffled = list(range(len(scores)))
        rng.shuffle(shuffled)
        order = sorted(shuffled, key=lambda i: -scores[i])
        found, precisions, first = 0, [], 0.0
        for rank, index in enumerate(order, start=1):
            if question.labels[index]:
                found += 1
                precisions.append(found / rank)
                if not first:
                    first = 1.0 / rank
        average_precisions.append(float(np.mean(precisions)))
        reciprocal_ranks.append(first)
    return {
        "questions": len(average_precisions),
        "map": round(float(np.mean(average_precisions)), 4),
        "mrr": round(float(np.mean(reciprocal_ranks)), 4),
    }


def service_picks(
    model: AnswerModel, questions: Sequence[SelectionQuestion]
) -> tuple[list[float], list[bool]]:
    """The service's pick per question, its candidates read as one passage (a line each) and
    judged: its confidence, and whether it quotes a correct sentence. A question with no
    candidate the service would answer with counts as a wrong pick at confidence 0."""
    confidences, correct = [], []
    for question in questions:
        spans, cursor = [], 0
        for sentence in question.sentences:
            spans.append((cursor, cursor + len(sentence)))
            cursor += len(sentence) + 1
        text = "\n".join(question.sentences)
        passage = PassageText(question.title, text, spans)
        ranked = score_candidates(model, question.question, [passage])
        picks = judge_picks(model, question.question, [passage], ranked, quotes_overlap)
        if not picks:
            confidences.append(0.0)
            correct.append(False)
            continue
        start, end = picks[0].quote
        quoted = [i for i, (a, b) in enumerate(spans) if a < end and start < b]
        confidences.append(picks[0].confidence)
        correct.append(any(question.labels[i] for i in quoted))
    return confidences, correct
