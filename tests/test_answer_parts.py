"""The answer's parts without a model: candidates, header lines, short answers, question types,
calibration, the ranking metrics (ties broken at random) and SciFact's train evidence as
selection questions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from lede.eval.answer_selection import SelectionQuestion, ranking_metrics
from lede.eval.calibration import calibration
from lede.service.answers.candidates import (
    answer_sentences,
    candidates,
    is_answer_sentence,
    refers_back,
)
from lede.service.answers.model import Calibration
from lede.service.answers.question_types import question_type
from lede.service.answers.scoring import PassageText, score_candidates
from lede.service.answers.short_answers import short_answer

HEADER = (
    "date 2021-03-02 Harbor City\n"
    "Harbor Lights Festival postponed to autumn\n"
    "By Marta Quell, Culture Desk\n"
    "Photo: The main stage at Pier 9 last summer (Harbor City Tourism Office)\n"
    "\n"
    "The Harbor Lights Festival will not take place in June this year. Organisers said on "
    "Tuesday that the event has been moved to September 17.\n"
)


def test_line_breaks_end_sentences_and_spans_are_exact() -> None:
    spans = answer_sentences(HEADER)
    texts = [HEADER[s:e] for s, e in spans]
    assert texts[:4] == [
        "date 2021-03-02 Harbor City",
        "Harbor Lights Festival postponed to autumn",
        "By Marta Quell, Culture Desk",
        "Photo: The main stage at Pier 9 last summer (Harbor City Tourism Office)",
    ]
    assert texts[4].startswith("The Harbor Lights Festival will not")
    assert texts[5].endswith("September 17.")


def test_header_lines_are_never_candidates() -> None:
    title = "Harbor Lights Festival postponed to autumn"
    spans = answer_sentences(HEADER)
    found = [HEADER[c.start : c.end] for c in candidates(HEADER, spans, title)]
    assert all(not text.startswith(("date ", "By ", "Photo:", "Harbor Lights")) for text in found)
    assert any(text.endswith("September 17.") for text in found)
    assert not is_answer_sentence("Harbor Lights Festival postponed to autumn", title)
    assert not is_answer_sentence("ROME, Oct. 13 (Reuters) -")
    assert not is_answer_sentence("Posted on October 13, 2020 by Staff")
    assert not is_answer_sentence("Tom Cruise in Rome")  # a fragment, not a sentence
    assert is_answer_sentence("Tom Cruise plays Ethan Hunt.")


def test_a_sentence_that_refers_back_comes_with_the_one_before() -> None:
    text = (
        "Veteran actor Colm Reddy joins the cast. He plays her estranged father. "
        "Filming ends in Porto next spring."
    )
    spans = answer_sentences(text)
    found = [(c.first, c.last) for c in candidates(text, spans)]
    assert found == [(0, 0), (0, 1), (2, 2)]  # "He plays ..." only with the sentence before
    assert refers_back("She plays Grace.") and refers_back("The film opens in May.")
    assert not refers_back("Rowan Pike stars as Ada Marsh.")


class _OverlapScorer:
    """A stand-in scorer: the logit is the number of words shared with the question."""

    def logits(self, question: str, found: Sequence[tuple[str, str]]) -> np.ndarray:
        asked = set(question.lower().split())
        return np.array([len(asked & set(text.lower().split())) for _, text in found], float)


def test_shortlist_limits_what_the_scorer_reads() -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(30))
    passage = PassageText("", text, answer_sentences(text))
    read: list[int] = []

    class Counting(_OverlapScorer):
        def logits(self, question: str, found: Sequence[tuple[str, str]]) -> np.ndarray:
            read.append(len(found))
            return super().logits(question, found)

    ranked = score_candidates(Counting(), "what about topic 7.", [passage], shortlist=5)
    assert read == [5] and len(ranked) == 5
    assert "topic 7." in text[ranked[0].start : ranked[0].end]


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("Who plays Ethan Hunt?", "Tom Cruise plays Ethan Hunt again.", "Tom Cruise"),
        (
            "When will the festival take place?",
            "The festival has been moved to September 17, 2021, organisers said.",
            "September 17, 2021",
        ),
        ("How many concerts are there?", "She programmes more than 60 concerts.", "60"),
        ("How old is Lena Okafor?", "Lena Okafor, 47, has led it since 2015.", "47"),
        ("Where was the film shot?", "Most of it was shot in Venice last year.", "Venice"),
        ("How much did it cost?", "The stage cost $1.5 million to build.", "$1.5 million"),
        ("When was it founded?", "It was founded in 1987 by two sailors.", "1987"),
        ("Who is the director?", "Christopher McQuarrie directs.", "Christopher McQuarrie"),
    ],
)
def test_short_answers(question: str, sentence: str, expected: str) -> None:
    span = short_answer(question, sentence)
    assert span is not None and sentence[span[0] : span[1]] == expected


def test_no_short_answer_when_none_is_clear() -> None:
    assert short_answer("Why was it moved?", "Because of the strike.") is None
    assert short_answer("Who plays Ethan Hunt?", "Ethan Hunt returns.") is None
    assert short_answer("How many tickets were sold?", "Tickets remain valid.") is None


def test_question_types() -> None:
    assert question_type("How many homes can it power?") == "number"
    assert question_type("When will it open?") == "date"
    assert question_type("In what year did it open?") == "date"
    assert question_type("Who plays Ethan Hunt?") == "person"
    assert question_type("The defense was led by whom?") == "person"
    assert question_type("Where was it filmed?") == "place"
    assert question_type("Why did it stop?") is None


def test_calibration_error_and_platt() -> None:
    table = calibration([0.95, 0.95, 0.15, 0.15], [True, False, False, False])
    # Buckets: [0.9, 1] has accuracy 0.5 at confidence 0.95, [0.1, 0.2) 0 at 0.15.
    assert table["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.15)
    platt = Calibration(slope=2.0, intercept=-1.0)
    assert platt(0.5) == pytest.approx(0.5) and platt(10) > 0.99 and platt(-10) < 0.01


def test_ranking_breaks_ties_at_random() -> None:
    # Correct candidates listed first, as TrecQA does: equal scores must not look perfect.
    questions = [
        SelectionQuestion(str(i), "q", "", ("a", "b", "c", "d"), (1, 0, 0, 0)) for i in range(200)
    ]
    tied = ranking_metrics(questions, lambda q: [0.0] * 4)
    assert 0.4 < float(tied["map"]) < 0.65
    perfect = ranking_metrics(questions, lambda q: [1.0, 0.0, 0.0, 0.0])
    assert perfect["map"] == 1.0 and perfect["mrr"] == 1.0
