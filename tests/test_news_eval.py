"""The news evaluation's rules without an index: what counts as a right answer, and the figures
it reports (answered right, precision, unanswerable answered, AUC, the threshold trade-off)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lede.eval.news_qa import (
    NewsQuestion,
    at_threshold,
    auc,
    judge,
    load_news_questions,
    summarize,
)
from lede.indexer.models import ChunkRecord
from lede.service.answers.answerer import Answer, AnswerSpan, Citation
from lede.service.engine import Hit

STORY = "Barclays said it is cutting its base rate to 10.5 pct from 11 pct."
RECORD = {
    "id": "rqa-1",
    "article_id": "7",
    "question": "What base rate did Barclays set?",
    "answerable": True,
    "type": "how much",
    "answer": {"text": "10.5 pct", "start": 42, "end": 50},
    "sentence": {"start": 0, "end": len(STORY)},
    "alternatives": [],
    "accept": r"(?<![\d.,])10\.5\s+(?:pct|percent|%)(?!\w)",
}


def _hit(article_id: str, text: str) -> Hit:
    record = ChunkRecord(
        1,
        f"{article_id}#0",
        article_id,
        0,
        0,
        len(text),
        text,
        "",
        None,
        None,
        None,
        None,
        None,
        (),
    )
    return Hit(record, 1.0)


def _answer(article_id: str, quote: str, span: str | None, confidence: float) -> Answer:
    hit = _hit(article_id, quote)
    citation = Citation(1, hit, 0, len(quote), quote)
    answer_span = AnswerSpan(span, 0, len(span)) if span else None
    return Answer(quote, confidence, [citation], [hit], answer_span)


@pytest.fixture
def question(tmp_path: Path) -> NewsQuestion:
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps(RECORD) + "\n")
    (loaded,) = load_news_questions(path)
    return loaded


def test_a_bad_record_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps(RECORD) + "\n" + json.dumps({"id": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"dev.jsonl:2: not a reuters-qa record"):
        load_news_questions(path)


def test_right_means_the_story_or_a_copy_and_a_matching_answer(question: NewsQuestion) -> None:
    texts = {"7": STORY, "8": "Midland also cut its base rate to 10.5 pct.", "9": "Rates fell."}
    right = judge(question, _answer("7", STORY, "10.5 pct", 0.9), texts, 1.0)
    assert right.right and right.span_right and right.gold_retrieved
    # a repeated wire that holds the answer counts; the quote matching is enough
    copy = judge(question, _answer("8", texts["8"], "Midland", 0.9), texts, 1.0)
    assert copy.right and not copy.span_right and not copy.gold_retrieved
    # another story without the answer does not, even when the sentence matches by chance
    other = judge(question, _answer("9", "It was 10.5 pct in 1985.", "10.5 pct", 0.9), texts, 1.0)
    assert not other.right
    nothing = judge(question, Answer(None, 0.0, [], []), texts, 1.0)
    assert not nothing.right and nothing.cited is None


def test_the_figures_at_a_threshold(question: NewsQuestion) -> None:
    texts = {"7": STORY}
    never = NewsQuestion(
        "rqa-2",
        "7",
        "What did Barclays pay?",
        False,
        "how much",
        None,
        None,
        None,
        None,
        None,
        (),
        None,
    )
    judged = [
        judge(question, _answer("7", STORY, "10.5 pct", 0.9), texts, 10.0),
        # the quote holds the answer though the span is wrong: right, but not its short answer
        judge(question, _answer("7", STORY, "11 pct", 0.4), texts, 20.0),
        judge(never, _answer("7", STORY, "11 pct", 0.7), texts, 30.0),
    ]
    figures = at_threshold(judged, 0.5)
    assert figures["answered_right"] == 0.5  # one of the two answerable, right and given
    assert figures["precision"] == 0.5 and figures["answers_given"] == 2
    assert figures["unanswerable_answered"] == 1.0
    summary = summarize(judged, 0.5)
    assert summary["best_candidate_right"] == 1.0 and summary["short_answer_right"] == 0.5
    assert auc([0.9, 0.4, 0.7], [True, False, False]) == 1.0
    assert auc([0.9], [True]) is None
