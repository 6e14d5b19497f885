"""The dev end-to-end threshold trade-off (`lede.eval.answer_threshold`, decision 49)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lede.eval.answer_prior import correct_sentences, pages_index
from lede.eval.answer_threshold import Pick, ask, at_budget, collect, curve, separation
from lede.service.answers import Answerer
from lede.service.engine import SearchEngine


def test_the_curve_counts_each_group_apart() -> None:
    picks = [
        Pick(True, True, True, 0.9),  # answerable, right, confident
        Pick(True, True, False, 0.5),  # answerable, wrong, unsure
        Pick(True, False, False, 0.7),  # the page lacks the answer
        Pick(False, True, False, 0.3),  # asked without its page
        Pick(False, False, False, 0.8),
    ]
    low, middle, high = curve(picks, (0.4, 0.6, 0.85))
    assert low == {
        "threshold": 0.4,
        "answerable_right": 0.5,
        "answerable_wrong": 0.5,
        "same_topic_answered": 1.0,
        "not_indexed_answered": 0.5,
    }
    assert middle["answerable_wrong"] == 0.0 and middle["not_indexed_answered"] == 0.5
    assert high["answerable_right"] == 0.5 and high["same_topic_answered"] == 0.0
    assert curve([Pick(True, True, True, 0.9)], (0.5,))[0]["same_topic_answered"] is None
    # The lowest threshold answering at most 10% of the same-topic question (0.7): 0.71.
    row = at_budget(picks)
    assert row is not None and row["threshold"] == 0.71 and row["answerable_right"] == 0.5
    assert at_budget([Pick(True, False, False, 0.99)]) is None  # no threshold on the grid keeps it


def test_separation_credits_a_feature_that_tells_right_from_wrong() -> None:
    picks = [
        Pick(True, True, n % 2 == 0, 0.5, logit=float(n % 3), similarity=1.0 if n % 2 == 0 else 0.0)
        for n in range(40)
    ]
    result = separation(picks)
    assert result["picks"] == 40 and result["right"] == 20
    assert result["service_confidence_auc"] == 0.5  # the same confidence for all
    assert result["logit + margin + similarity"]["auc"] == 1.0
    assert result["logit + margin"]["auc"] < 0.8
    assert result["service_at_budget"]["threshold"] == 0.05  # no same-topic question here
    assert result["logit + margin + similarity"]["at_budget"]["answerable_right"] == 0.5


WIKIQA_ITEMS = [
    {
        "question": "how tall is the lantern tower",
        "document_id": "D1",
        "candidates": [
            {"sentence": "The Lantern Tower stands in the old harbour of Vell.", "label": 0},
            {"sentence": "The tower is 92 metres tall.", "label": 1},
        ],
    },
    {
        "question": "who built the lantern tower",
        "document_id": "D1",
        "candidates": [
            {"sentence": "The Lantern Tower stands in the old harbour of Vell.", "label": 0},
            {"sentence": "The tower is 92 metres tall.", "label": 0},
        ],
    },
]
PAGES = {
    "D1": (
        "Lantern Tower",
        ["The Lantern Tower stands in the old harbour of Vell.", "The tower is 92 metres tall."],
    ),
    "D2": ("Vell", ["Vell is a fishing town with a market on Fridays.", "It has 4,000 people."]),
}


@pytest.mark.model
def test_questions_are_asked_with_and_without_their_page(tmp_path: Path) -> None:
    assert correct_sentences(WIKIQA_ITEMS[0]) == ["The tower is 92 metres tall."]
    assert correct_sentences(WIKIQA_ITEMS[1]) == []  # its own labels, not the shared page's
    with pages_index(PAGES, tmp_path / "pages") as index:
        answerer = Answerer(SearchEngine(index))
        picks = collect(answerer, WIKIQA_ITEMS, list(PAGES))
        alone = ask(answerer, WIKIQA_ITEMS[0], ("D2",))
    assert [(p.indexed, p.answerable) for p in picks] == [
        (True, True),
        (False, True),
        (True, False),
        (False, False),
    ]
    assert picks[0].right and picks[0].similarity > 0.3 and picks[0].prior == 1.0
    assert not picks[1].right and picks[1] == alone  # D1 filtered out: only Vell's page is left
    assert not picks[2].right  # no correct sentence: any answer is wrong
    assert 0 <= min(p.confidence for p in picks) <= max(p.confidence for p in picks) <= 1
    with pages_index(PAGES, tmp_path / "pages") as index:  # built once, then opened
        assert index.stats()["articles"] == 2
