"""The span reader's and the judge's parts without a model: windows, the reader's input, the
best span and its labels, what a span looks like, the quote that holds a span, the combiner."""

from __future__ import annotations

import numpy as np
import pytest

from lede.eval.news_qa import NewsQuestion
from lede.eval.train.judge import (
    PRECISION,
    UNANSWERED,
    AskedQuestion,
    PickFigures,
    choose_threshold,
    fit_combiner,
    pick,
    trade_off,
)
from lede.eval.train.reader_data import windows
from lede.service.answers.candidates import answer_sentences
from lede.service.answers.judge import (
    FEATURES,
    Combiner,
    coverage,
    kind_match,
    quote_for,
    span_kind,
)
from lede.service.answers.model import Calibration
from lede.service.answers.reader import best_span, reader_input, token_labels, window
from lede.service.answers.scoring import MARGIN_CAP, PassageText, Scored

STORY = (
    "Volkswagen AG reported results for 1986 on Monday.\n"
    "It said sales fell 4% to 789m euros in the year.\n"
    "Volkswagen will pay a dividend of 10 marks a share."
)


def _scored(first: int, last: int, spans: list[tuple[int, int]]) -> Scored:
    return Scored(0, first, last, spans[first][0], spans[last][1], 1.0, 1.0)


def test_a_window_is_the_candidate_with_a_sentence_either_side() -> None:
    spans = answer_sentences(STORY)
    assert len(spans) == 3
    assert window(spans, 0, 0) == (spans[0][0], spans[1][1])
    assert window(spans, 1, 1) == (spans[0][0], spans[2][1])
    assert window(spans, 2, 2) == (spans[1][0], spans[2][1])
    # every candidate's window once, in order
    assert windows(STORY) == [(0, spans[1][1]), (0, spans[2][1]), (spans[1][0], spans[2][1])]


def test_the_reader_reads_the_title_before_the_window() -> None:
    second, start = reader_input("VW_results ", "It said sales fell.")
    assert second == "VW results | It said sales fell." and second[start:] == "It said sales fell."
    assert reader_input("", "Text.") == ("Text.", 0)


def _tokens(text: str, offset: int) -> tuple[list[tuple[int, int]], list[int | None]]:
    """Word tokens of `[CLS] question [SEP] text [SEP]`, offsets into the text segment."""
    offsets: list[tuple[int, int]] = [(0, 0), (0, 3), (0, 0)]  # CLS, one question word, SEP
    ids: list[int | None] = [None, 0, None]
    position = 0
    for word in text.split(" "):
        start = text.index(word, position)
        offsets.append((offset + start, offset + start + len(word)))
        ids.append(1)
        position = start + len(word)
    return [*offsets, (0, 0)], [*ids, None]


def test_best_span_is_the_best_start_and_end_pair_inside_the_window() -> None:
    text = "sales fell 4% to 789m euros"
    offsets, ids = _tokens(f"T | {text}", 0)
    starts = np.full(len(offsets), -5.0)
    ends = np.full(len(offsets), -5.0)
    starts[0], ends[0] = 1.0, 1.0  # "no answer here"
    starts[1], ends[1] = 9.0, 9.0  # the question word scores high, but is not in the window
    starts[9], ends[10] = 6.0, 5.0  # "789m euros"
    ends[6] = 8.0  # an end before the best start ("fell"): not a span
    span = best_span(starts, ends, offsets, ids, text_from=4)
    assert span is not None
    assert text[span.start : span.end] == "789m euros"
    assert span.score == pytest.approx(11.0) and span.null == pytest.approx(2.0)
    assert span.evidence == pytest.approx(9.0)
    starts[8] = 7.0  # "to" starts better: "to 789m euros" wins
    span = best_span(starts, ends, offsets, ids, text_from=4)
    assert span is not None and text[span.start : span.end] == "to 789m euros"


def test_no_span_when_the_window_lost_its_tokens() -> None:
    offsets, ids = [(0, 0), (0, 3), (0, 0), (0, 0)], [None, 0, None, None]
    assert best_span(np.zeros(4), np.zeros(4), offsets, ids, 0) is None


def test_labels_point_at_the_answer_tokens_or_the_first_token() -> None:
    text = "sales fell 4% to 789m euros"
    offsets, ids = _tokens(f"T | {text}", 0)
    start = text.index("789m")
    assert token_labels(offsets, ids, 4, (start, start + len("789m euros"))) == (9, 10)
    assert token_labels(offsets, ids, 4, None) == (0, 0)
    cut = [*offsets[:6], (0, 0)], [*ids[:6], None]  # truncated before the answer
    assert token_labels(cut[0], cut[1], 4, (start, start + 4)) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("789m euros", "number"),
        ("4 pct", "number"),
        ("March 3, 1987", "date"),
        ("March", "date"),
        ("Gerald Tsai", "name"),
        ("security clearances", "phrase"),
    ],
)
def test_span_kinds(text: str, kind: str) -> None:
    assert span_kind(text) == kind


def test_a_span_matches_the_kind_asked_for() -> None:
    assert kind_match("How much did sales fall?", "789m euros") == 1.0
    assert kind_match("How much did sales fall?", "Volkswagen") == 0.0
    assert kind_match("Who chairs American Can?", "Gerald Tsai") == 1.0
    assert kind_match("When did the strike end?", "March 3") == 1.0
    assert kind_match("Why did it stop?", "a strike") == 1.0  # nothing in particular asked
    assert kind_match("How much?", None) == 0.0
    assert coverage("Volkswagen sales 1986", STORY) == 1.0
    assert coverage("Volkswagen profits in Brazil", "Volkswagen sales") == pytest.approx(1 / 3)


def test_the_quote_is_the_sentence_holding_the_span_with_what_it_refers_to() -> None:
    spans = answer_sentences(STORY)
    passage = PassageText("VW", STORY, spans)
    first = _scored(0, 0, spans)
    figure = STORY.index("789m euros")
    # the span sits in the next sentence, which refers back: the quote is both sentences
    assert quote_for(passage, first, (figure, figure + 10)) == (spans[0][0], spans[1][1])
    dividend = STORY.index("10 marks")
    assert quote_for(passage, first, (dividend, dividend + 8)) == spans[2]
    assert quote_for(passage, first, None) == spans[0]


def test_the_combiner_is_linear_over_its_features_and_checks_them() -> None:
    combiner = Combiner(weights=(1.0, 0.5, 0.0, 2.0, 0.0, 0.0), intercept=-1.0)
    assert combiner((3.0, 2.0, 9.0, 1.0, 0.0, 0.0)) == pytest.approx(5.0)
    assert Combiner.from_json(combiner.to_json()) == combiner
    with pytest.raises(ValueError, match="lede train answers"):
        Combiner(weights=(1.0,), intercept=0.0, names=("rank_score",))
    assert len(FEATURES) == 6


def _asked(rows: list[list[float]], right: list[bool], answerable: bool = True) -> AskedQuestion:
    question = NewsQuestion(
        "q", "1", "How much?", answerable, "how much", None, None, None, None, None, (), None
    )
    count = len(rows)
    overlap = np.eye(count, dtype=bool)
    return AskedQuestion(
        question, np.asarray(rows, float).reshape(count, 6), np.asarray(right), overlap
    )


def test_the_combiner_learns_which_feature_tells_right_from_wrong() -> None:
    rng = np.random.default_rng(0)
    asked = []
    for _ in range(200):
        evidence = rng.normal(size=4)
        right = evidence == evidence.max()
        rows = [[rng.normal(), e, rng.normal(), 1.0, 1.0, 0.5] for e in evidence]
        asked.append(_asked(rows, list(right & (evidence.max() > 0))))
    combiner = fit_combiner(asked)
    assert combiner.weights[1] > 0.5 and abs(combiner.weights[0]) < 0.5
    chosen = pick(asked[0], combiner)
    assert chosen.score == pytest.approx(max(combiner(r) for r in asked[0].rows))
    assert -MARGIN_CAP <= chosen.margin <= MARGIN_CAP
    assert pick(_asked([], []), combiner).right is False  # nothing to pick: a wrong answer


def test_the_threshold_keeps_precision_and_unanswered_within_bounds() -> None:
    platt = Calibration(slope=1.0, intercept=0.0)
    picks = (
        [PickFigures(3.0, 1.0, True, True)] * 60  # confident and right
        + [PickFigures(0.5, 1.0, True, True)] * 20  # unsure and right
        + [PickFigures(0.4, 1.0, False, True)] * 20  # unsure and wrong
        + [PickFigures(0.0, 1.0, False, False)] * 20  # unanswerable
    )
    threshold, table = choose_threshold(picks, platt)
    chosen = trade_off(picks, platt, threshold)
    assert chosen["precision"] >= PRECISION and chosen["unanswerable_answered"] <= UNANSWERED
    assert chosen["answered_right"] == pytest.approx(0.8)  # the unsure right ones too
    assert 0.5 < threshold <= 0.62 and [row["threshold"] for row in table][:2] == [0.05, 0.1]
