"""Answers on articles with the shapes real archives are full of, on the real models: the
answer in the sentence after the one that repeats the question, a pronoun that refers back,
a header block (dateline, headline, byline, photo credit), and facts the articles never state.
The texts are written for these tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import parse_article
from lede.service.answers.answerer import Answerer
from lede.service.engine import SearchEngine

pytestmark = pytest.mark.model

FESTIVAL = """date 2021-03-02 Harbor City
Harbor Lights Festival postponed to autumn
By Marta Quell, Culture Desk
Photo: The main stage at Pier 9 last summer (Harbor City Tourism Office)

The Harbor Lights Festival will not take place in June this year. Organisers said on Tuesday \
that the event has been moved to September 17. The decision was made because of a shortage \
of stage crews after the port strike.

The festival's artistic director is Lena Okafor, who has led the event since 2015. She \
programmes more than 60 concerts over four days at six venues along the waterfront.

Tickets already sold remain valid for the new dates, the organisers said. Refunds are \
available until April 30 for those who cannot attend in September.
"""

FILM = """Fog Line begins shooting in Lisbon
By Tomas Varga
Photo credit: Studio Norte

Rowan Pike stars as the detective Ada Marsh in Fog Line, a thriller that began filming in \
Lisbon on Monday. The film is directed by Ines Carvalho, whose first feature won a prize at \
Locarno. Veteran actor Colm Reddy has joined the cast. He plays the detective's estranged \
father, a retired harbour pilot. Studio Norte expects to release the film in March 2023.
"""


@pytest.fixture(scope="module")
def answerer(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Iterator[Answerer]:
    path: Path = tmp_path_factory.mktemp("shapes") / "index"
    articles = [
        parse_article(
            {
                "id": "festival",
                "title": "Harbor Lights Festival postponed to autumn",
                "text": FESTIVAL,
            }
        ),
        parse_article({"id": "film", "title": "Fog Line begins shooting in Lisbon", "text": FILM}),
    ]
    with LedeIndex.create(path, embedder=real_embedder) as index:
        index.add(articles)
        answerer = Answerer(SearchEngine(index))
        answerer.warm_up()
        yield answerer


@pytest.mark.parametrize(
    ("question", "in_answer", "span"),
    [
        # The answer sits in the sentence after the one that repeats the question's words.
        pytest.param(
            "When will the Harbor Lights Festival take place?",
            "September 17",
            "September 17",
            marks=pytest.mark.xfail(
                strict=True,
                reason="known: the model prefers the negated sentence that repeats the "
                "question ('will not take place in June')",
            ),
        ),
        ("Why was the Harbor Lights Festival moved?", "shortage of stage crews", None),
        (
            "Who is the artistic director of the Harbor Lights Festival?",
            "Lena Okafor",
            "Lena Okafor",
        ),
        # "He plays ..." is judged with the sentence before it, which names the actor.
        ("Who plays Ada Marsh's father in Fog Line?", "Colm Reddy", "Colm Reddy"),
        ("Who directs Fog Line?", "Ines Carvalho", "Ines Carvalho"),
        ("Where is Fog Line being filmed?", "Lisbon", "Lisbon"),
        ("How many concerts does the Harbor Lights Festival have?", "60 concerts", "60"),
    ],
)
def test_answers_and_short_answers(
    answerer: Answerer, question: str, in_answer: str, span: str | None
) -> None:
    # Which candidate wins, whatever its confidence: the default threshold is chosen on
    # WikiQA's harder unanswerable questions and abstains on some of these (the note).
    answer = answerer.ask(question, threshold=0.0)
    assert answer.answer is not None, (question, answer.confidence)
    assert in_answer in answer.answer, (question, answer.answer)
    citation = answer.citations[0]
    found = answerer.engine.index.article(citation.hit.record.article_id)
    assert found is not None
    article = found[0]
    assert article.text[citation.start : citation.end] == answer.answer
    if span is not None:
        assert answer.answer_span is not None, question
        assert answer.answer_span.text == span
        assert article.text[answer.answer_span.start : answer.answer_span.end] == span


@pytest.mark.parametrize(
    "question",
    [
        "How old is Lena Okafor?",  # the header block holds a name and a date, not an age
        "What is the budget of Fog Line?",
        "How many people attended the festival last year?",
    ],
)
def test_absent_facts_abstain_and_header_lines_never_answer(
    answerer: Answerer, question: str
) -> None:
    answer = answerer.ask(question)
    assert answer.answer is None, (question, answer.answer, answer.confidence)
    forced = answerer.ask(question, threshold=0.0)  # whatever it would say, never a header line
    assert forced.answer is not None
    assert not forced.answer.startswith(("date ", "By ", "Photo", "Harbor Lights Festival post"))
    assert "\n" not in forced.answer


def test_second_citation_only_when_it_supports_the_answer(answerer: Answerer) -> None:
    # Below the default threshold (0.65 since decision 48) this answer's confidence, about
    # 0.6, abstains; what is checked here is which citations an answer gets.
    answer = answerer.ask("Who directs Fog Line?", threshold=0.5)
    assert answer.answer is not None and "Ines Carvalho" in answer.answer
    assert [c.hit.record.article_id for c in answer.citations] == ["film"]
