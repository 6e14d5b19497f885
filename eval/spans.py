"""Short answers compared: the trained span reader against the pattern rules, given the sentence
that holds the answer (so retrieval and the choice of sentence do not enter).

For each answerable question the rules read the gold sentence alone (as they read a quote), the
reader reads the gold sentence's window (the sentence with its neighbours, as the service reads
a candidate). Scores are SQuAD's exact match and F1 against the answer and its alternatives, and
for reuters-qa also whether `accept` matches. A question the rules give no span for scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lede.eval.news_qa import NewsQuestion
from lede.eval.squad_metrics import exact_match, f1_score
from lede.service.answers.candidates import answer_sentences
from lede.service.answers.reader import Reader, window
from lede.service.answers.short_answers import short_answer


def _scores(predicted: list[str | None], answers: list[list[str]]) -> dict[str, float]:
    return {
        "exact_match": round(
            float(
                np.mean([exact_match(p or "", a) for p, a in zip(predicted, answers, strict=True)])
            ),
            4,
        ),
        "f1": round(
            float(
                np.mean(
                    [f1_score(p, a) if p else 0.0 for p, a in zip(predicted, answers, strict=True)]
                )
            ),
            4,
        ),
        "span_given": round(float(np.mean([p is not None for p in predicted])), 4),
    }


def _gold_window(text: str, start: int, end: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The sentence (of `answer_sentences`) holding `start..end`, and its window."""
    spans = answer_sentences(text)
    rows = [i for i, (s, e) in enumerate(spans) if s < end and start < e]
    first, last = (rows[0], rows[-1]) if rows else (0, 0)
    return (spans[first][0], spans[last][1]), window(spans, first, last)


def compare_news(
    reader: Reader,
    questions: Sequence[NewsQuestion],
    texts: dict[str, str],
    titles: dict[str, str],
) -> dict[str, Any]:
    """Rules against reader on reuters-qa's answerable questions, given the gold sentence."""
    rules: list[str | None] = []
    read: list[str | None] = []
    answers: list[list[str]] = []
    accepted = {"rules": [], "reader": []}  # type: dict[str, list[bool]]
    for question in questions:
        if not question.answerable or question.answer_start is None:
            continue
        text = texts[question.article_id]
        (s, e), (ws, we) = _gold_window(text, question.answer_start, question.answer_end or 0)
        sentence = text[s:e]
        found = short_answer(question.question, sentence)
        rules.append(sentence[found[0] : found[1]] if found else None)
        span = reader.read(question.question, [(titles.get(question.article_id, ""), text[ws:we])])[
            0
        ]
        read.append(text[ws:we][span.start : span.end] if span else None)
        answers.append([question.answer or "", *question.alternatives])
        accepted["rules"].append(question.accepts(rules[-1]))
        accepted["reader"].append(question.accepts(read[-1]))
    return {
        "questions": len(answers),
        "rules": {**_scores(rules, answers), "accept": round(float(np.mean(accepted["rules"])), 4)},
        "reader": {
            **_scores(read, answers),
            "accept": round(float(np.mean(accepted["reader"])), 4),
        },
    }


def compare_squad(reader: Reader, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rules against reader on SQuAD questions, given the sentence holding the first answer."""
    rules: list[str | None] = []
    read: list[str | None] = []
    answers: list[list[str]] = []
    for item in items:
        context = item["context"]
        first = item["answers"][0]
        start = first["answer_start"]
        (s, e), (ws, we) = _gold_window(context, start, start + len(first["text"]))
        sentence = context[s:e]
        found = short_answer(item["question"], sentence)
        rules.append(sentence[found[0] : found[1]] if found else None)
        span = reader.read(item["question"], [(item.get("title", ""), context[ws:we])])[0]
        read.append(context[ws:we][span.start : span.end] if span else None)
        answers.append([a["text"] for a in item["answers"]])
    return {
        "questions": len(answers),
        "rules": _scores(rules, answers),
        "reader": _scores(read, answers),
    }
