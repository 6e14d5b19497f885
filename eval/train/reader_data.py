"""Training windows for the span reader, from train splits only.

Every example is what the service reads: a question and a candidate's window (the candidate with
the sentences before and after it, `answer_reader.window`) of a story or paragraph, with the
answer's characters in the window, or none. Sources:

- SQuAD v1.1 dev's `train` articles (`qa/split.json`), each question's windows holding its
  answer, and windows of the same paragraph without it; SQuAD 2.0's unanswerable questions on
  those articles (written to look answerable), with windows of their paragraph, the one holding
  the tempting wrong answer first.
- `reuters-qa` train: windows of the story around the answer (the answer in the candidate or in
  its neighbour), windows of the story without it, and windows of other stories the service
  retrieves for the question (`hard`: the same topic, another fact); its unanswerable questions
  with the service's own candidates.
- WikiQA train's answer phrases inside their correct sentences, read with the page's sentences
  around them.

SQuAD's test articles, WikiQA test and reuters-qa dev are never read here.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lede.eval.news_qa import NewsQuestion
from lede.indexer.sentences import Span
from lede.service.answers.answerer import Answerer
from lede.service.answers.candidates import answer_sentences, candidates
from lede.service.answers.reader import window


@dataclass(frozen=True, slots=True)
class ReaderExample:
    question: str
    title: str
    text: str  # the window
    answer: Span | None  # characters of `text`, or None: "no answer here"
    source: str


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def windows(text: str, title: str = "") -> list[Span]:
    """Every candidate's window in `text`, in order, each once."""
    spans = answer_sentences(text)
    found: list[Span] = []
    for candidate in candidates(text, spans, title):
        span = window(spans, candidate.first, candidate.last)
        if span not in found:
            found.append(span)
    return found


def _examples_of(
    question: str,
    title: str,
    text: str,
    answers: Sequence[Span],
    holds: Any,
    rng: random.Random,
    *,
    positives: int,
    negatives: int,
    source: str,
) -> list[ReaderExample]:
    """Windows of `text` holding an answer (its first answer span inside, up to `positives`)
    and windows holding none (`holds(window_text)` false, up to `negatives`)."""
    with_answer: list[ReaderExample] = []
    without: list[ReaderExample] = []
    for start, end in windows(text, title):
        inside = [(a, b) for a, b in answers if start <= a and b <= end]
        piece = text[start:end]
        if inside:
            a, b = inside[0]
            with_answer.append(
                ReaderExample(question, title, piece, (a - start, b - start), source)
            )
        elif not holds(piece):
            without.append(ReaderExample(question, title, piece, None, source))
    rng.shuffle(with_answer)
    rng.shuffle(without)
    return with_answer[:positives] + without[:negatives]


def squad_examples(
    datasets: Path,
    rng: random.Random,
    *,
    positives: int = 1,
    negatives: int = 1,
    limit: int | None = None,
) -> list[ReaderExample]:
    """SQuAD's train articles: answerable questions (v1.1) and unanswerable ones (2.0); with
    `limit`, the first `limit` of each kind."""
    split = json.loads((datasets / "squad-v1.1-dev/qa/split.json").read_text())
    train = set(split["train"])
    examples: list[ReaderExample] = []
    answerable = [
        item for item in _lines(datasets / "squad-v1.1-dev/qa/dev.jsonl") if item["title"] in train
    ]
    for item in answerable[:limit]:
        texts = [a["text"] for a in item["answers"]]
        answers = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in item["answers"]]
        examples += _examples_of(
            item["question"],
            item["title"],
            item["context"],
            answers,
            lambda piece, texts=texts: any(t in piece for t in texts),
            rng,
            positives=positives,
            negatives=negatives,
            source="squad",
        )
    unanswerable = [
        item
        for item in _lines(datasets / "squad-v2.0-dev-half/qa/dev.jsonl.gz")
        if item["is_impossible"] and item["title"] in train
    ]
    for item in unanswerable[:limit]:
        context = item["context"]
        spans = windows(context, item["title"])
        tempting = [
            (s, e)
            for s, e in spans
            for p in item.get("plausible_answers") or []
            if s <= p["answer_start"] < e
        ]
        rest = [s for s in spans if s not in tempting]
        rng.shuffle(rest)
        for start, end in (tempting + rest)[:1]:
            examples.append(
                ReaderExample(item["question"], item["title"], context[start:end], None, "squad2")
            )
    return examples


def news_examples(
    questions: Sequence[NewsQuestion],
    texts: dict[str, str],
    titles: dict[str, str],
    rng: random.Random,
    *,
    negatives: int = 3,
) -> list[ReaderExample]:
    """reuters-qa train: windows of each question's own story (with and without the answer)."""
    examples: list[ReaderExample] = []
    for question in questions:
        text = texts[question.article_id]
        title = titles.get(question.article_id, "")
        answers: list[Span] = []
        if question.answer_start is not None and question.answer_end is not None:
            answers.append((question.answer_start, question.answer_end))
        examples += _examples_of(
            question.question,
            title,
            text,
            answers,
            question.accepts,
            rng,
            positives=3,
            negatives=negatives if question.answerable else negatives + 1,
            source="news",
        )
    return examples


def wikiqa_examples(
    datasets: Path, rng: random.Random, *, limit: int | None = None
) -> list[ReaderExample]:
    """WikiQA train's answer phrases (the shortest marked phrase found in its sentence), read
    with the page's sentences before and after; and one window of the page without one. With
    `limit`, the first `limit` phrases."""
    train = {str(q["question_id"]): q for q in _lines(datasets / "wikiqa/qa/train.jsonl")}
    examples: list[ReaderExample] = []
    for row in list(_lines(datasets / "wikiqa/qa/answer_phrases.jsonl"))[:limit]:
        question = train.get(str(row["QuestionID"]))
        if question is None:
            continue
        sentence = row["Sentence"]
        phrases = [
            p
            for p in (row.get(f"AnswerPhrase{i}") or "" for i in (1, 2, 3))
            if p and p != "NO_ANS" and p in sentence
        ]
        if not phrases:
            continue
        phrase = min(phrases, key=len)
        ordered = sorted(question["candidates"], key=lambda c: _order(c["sentence_id"]))
        sentences = [c["sentence"] for c in ordered]
        text = "\n".join(sentences)
        offset = 0
        position = None
        for candidate in ordered:
            if candidate["sentence_id"] == row["SentenceID"]:
                position = offset + sentence.index(phrase)
                break
            offset += len(candidate["sentence"]) + 1
        if position is None:
            continue
        labels = [bool(c["label"]) for c in ordered]
        correct = [s for s, ok in zip(sentences, labels, strict=True) if ok]
        examples += _examples_of(
            question["question"],
            question.get("document_title") or "",
            text,
            [(position, position + len(phrase))],
            lambda piece, correct=correct: any(s in piece for s in correct),
            rng,
            positives=1,
            negatives=1,
            source="wikiqa",
        )
    return examples


def _order(sentence_id: str) -> int:
    tail = sentence_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def hard_examples(
    answerer: Answerer,
    questions: Sequence[NewsQuestion],
    *,
    per_question: int = 2,
    depth: int = 6,
) -> list[ReaderExample]:
    """Windows of the service's own best candidates that do not hold the answer (other stories
    on the topic, other facts of the story), as "no answer here": the reader must tell the
    figure asked for from a figure of the same kind."""
    examples: list[ReaderExample] = []
    for question in questions:
        hits = answerer.engine.search(question.question, k=answerer.settings.passages).hits
        found = 0
        for scored in answerer.rank(question.question, hits)[:depth]:
            record = hits[scored.passage].record
            spans = answer_sentences(record.text)
            start, end = window(spans, scored.first, scored.last)
            piece = record.text[start:end]
            if question.accepts(piece):
                continue
            examples.append(
                ReaderExample(question.question, record.title, piece, None, "news-hard")
            )
            found += 1
            if found >= per_question:
                break
    return examples
