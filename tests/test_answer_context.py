"""The span reader and the judge on the real bundled model: the answer in the sentence after the
one naming the subject, quoted with what it refers to and no more; short answers with units."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import parse_article
from lede.service.answers.answerer import Answerer
from lede.service.engine import SearchEngine

pytestmark = pytest.mark.model

STORIES = [
    {
        "id": "vw-results",
        "title": "Volkswagen reports 1986 results",
        "text": (
            "Volkswagen AG, West Germany's largest carmaker, reported its 1986 results "
            "on Monday.\n"
            "It said group sales fell 4.2 pct to 52.8 billion marks, while net profit rose to "
            "580 mln marks from 596 mln.\n"
            "The company will pay an unchanged dividend of 10 marks a share.\n"
            "Volkswagen said it expects higher car sales in the United States this year."
        ),
    },
    {
        "id": "cocoa-bahia",
        "title": "Bahia cocoa review",
        "text": (
            "Showers continued throughout the week in the Bahia cocoa zone, alleviating "
            "the drought.\n"
            "Arrivals for the week ended February 22 were 155,221 bags of 60 kilos.\n"
            "Comissaria Smith said spot bean prices rose to 340 to 350 cruzados per arroba."
        ),
    },
]


@pytest.fixture(scope="module")
def answerer(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Iterator[Answerer]:
    path = tmp_path_factory.mktemp("context") / "index"
    with LedeIndex.create(path, embedder=real_embedder) as index:
        index.add([parse_article(story) for story in STORIES])
        yield Answerer(SearchEngine(index))


def _text(answerer: Answerer, article_id: str) -> str:
    found = answerer.engine.index.article(article_id)
    assert found is not None
    return found[0].text


def test_the_answer_in_the_next_sentence_is_quoted_with_the_sentence_it_refers_to(
    answerer: Answerer,
) -> None:
    answer = answerer.ask("What were Volkswagen's group sales in 1986?", threshold=0.0)
    assert answer.answer_span is not None and "52.8 billion marks" in answer.answer_span.text
    cited = answer.citations[0]
    text = _text(answerer, "vw-results")
    assert cited.quote == text[cited.start : cited.end]
    # "It said ..." refers back: quoted with the sentence naming the company, and no more
    assert cited.quote.startswith("Volkswagen AG, West Germany's largest carmaker")
    assert cited.quote.endswith("from 596 mln.")
    span = answer.answer_span
    assert text[span.start : span.end] == span.text
    assert cited.start <= span.start and span.end <= cited.end


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What dividend will Volkswagen pay per share?", "10 marks"),
        ("How many bags of cocoa arrived in the week ended February 22?", "155,221"),
        ("Who said spot bean prices rose?", "Smith"),
    ],
)
def test_short_answers_are_the_amount_or_the_name(
    answerer: Answerer, question: str, expected: str
) -> None:
    answer = answerer.ask(question, threshold=0.0)
    assert answer.answer_span is not None
    assert expected in answer.answer_span.text, answer.answer_span.text
    assert len(answer.answer_span.text) <= 3 * len(expected) + 10  # the answer, not a sentence


def test_a_question_the_stories_do_not_answer_gets_no_confident_answer(
    answerer: Answerer,
) -> None:
    answer = answerer.ask("How many cars did Volkswagen sell in Brazil in 1986?")
    assert answer.answer is None and answer.passages
