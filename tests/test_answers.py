"""Answers on the real model: citations, abstention, markdown; optional reranker and reader."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lede.eval.local_server import LEDE
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder, resolve_model_path
from lede.indexer.index import LedeIndex
from lede.service.answers.answerer import Answerer, AnswerSettings
from lede.service.engine import SearchEngine
from lede.service.models_optional import CrossEncoderReranker, SpanReader

pytestmark = pytest.mark.model

UNANSWERABLE = [
    "What is the capital of Mongolia?",
    "How do I bake a chocolate cake?",
    "What is the boiling point of mercury?",
]


@pytest.fixture(scope="module")
def answerer(real_index: LedeIndex) -> Answerer:
    return Answerer(SearchEngine(real_index))


def test_every_sample_question_cites_its_article(
    answerer: Answerer, real_index: LedeIndex, sample_questions: list[dict[str, str]]
) -> None:
    """The best candidate of every sample question comes from its article (threshold 0: what
    the scorer ranks first, whatever its confidence)."""
    for item in sample_questions:
        answer = answerer.ask(item["question"], threshold=0.0)
        assert answer.answer is not None, item["question"]
        cited = [c.hit.record.article_id for c in answer.citations]
        assert item["article_id"] == cited[0], (item["question"], cited)
        for citation in answer.citations:
            article = real_index.store.get_article(citation.hit.record.article_id)
            assert article is not None
            assert article.text[citation.start : citation.end] == citation.quote
        assert 0 <= answer.confidence <= 1


def test_sample_answers_are_right_when_given(
    answerer: Answerer, sample_questions: list[dict[str, str]]
) -> None:
    """At the default threshold (chosen on news dev questions for answers at least 85% right)
    most questions are answered and the answers given hold the expected answer as often as
    that promises; at threshold 0 the expected answer is first for most."""
    answers = [answerer.ask(item["question"]) for item in sample_questions]
    given = [(item, a) for item, a in zip(sample_questions, answers, strict=True) if a.answer]
    assert len(given) >= 0.75 * len(sample_questions)
    wrong = [
        item["question"]
        for item, answer in given
        if item["answer"].lower() not in (answer.answer or "").lower()
    ]
    assert len(wrong) <= 0.15 * len(given), wrong
    forced = sum(
        item["answer"].lower()
        in (answerer.ask(item["question"], threshold=0.0).answer or "").lower()
        for item in sample_questions
    )
    assert forced >= 0.8 * len(sample_questions)


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_unanswerable_questions_abstain_with_passages(answerer: Answerer, question: str) -> None:
    answer = answerer.ask(question)
    assert answer.answer is None and answer.citations == []
    assert answer.passages
    assert answer.markdown.startswith("I could not find a confident answer")


def test_threshold_and_filters(answerer: Answerer) -> None:
    question = "Who plays Ethan Hunt in Mission: Impossible 7?"
    assert answerer.ask(question, threshold=1.0).answer is None
    assert answerer.ask(UNANSWERABLE[0], threshold=0.0).answer is not None
    from lede.indexer.filters import Filters

    answer = answerer.ask(question, filters=Filters(sources=("Sports Desk",)))
    assert all(h.record.source == "Sports Desk" for h in answer.passages)


def test_markdown_numbers_citations_and_lists_sources(answerer: Answerer) -> None:
    answer = answerer.ask("Who plays Ethan Hunt in Mission: Impossible 7?")
    markdown = answer.markdown
    assert markdown.splitlines()[0].endswith("[1]" if len(answer.citations) == 1 else "]")
    assert "**Sources**" in markdown
    assert "(https://news.example.org/rome-daily-wire/mi7-rome-cruise-atwell)" in markdown


def test_lede_ask_command(real_index: LedeIndex) -> None:
    completed = subprocess.run(
        [
            LEDE,
            "ask",
            "Who plays Ethan Hunt in Mission: Impossible 7?",
            "--index",
            str(real_index.path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout)
    assert "Tom Cruise" in answer["answer"]
    assert answer["citations"][0]["article_id"] == "mi7-rome-cruise-atwell"
    plain = subprocess.run(
        [LEDE, "ask", "What is the boiling point of mercury?", "--index", str(real_index.path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.returncode == 0 and "could not find a confident answer" in plain.stdout


def _tiny_model(directory: Path, kind: str) -> Path:
    """A randomly initialised 2-layer BERT with the bundled model's tokenizer (no download)."""
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForQuestionAnswering,
        BertForSequenceClassification,
    )

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("all-MiniLM-L6-v2"))
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=2 if kind == "qa" else 1,
    )
    model_class = BertForQuestionAnswering if kind == "qa" else BertForSequenceClassification
    model_class(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_cross_encoder_reranker_path(real_index: LedeIndex, tmp_path: Path) -> None:
    reranker = CrossEncoderReranker(str(_tiny_model(tmp_path / "ce", "classifier")))
    engine = SearchEngine(real_index, reranker=reranker)
    result = engine.search("Tom Cruise in Rome", k=5)
    assert len(result.hits) == 5
    ranks = [h.scores["rerank"].rank for h in result.hits]  # type: ignore[union-attr]
    assert ranks == [1, 2, 3, 4, 5]
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    expected = reranker.score("Tom Cruise in Rome", [h.record.text for h in result.hits])
    assert scores == pytest.approx(expected)


def test_span_reader_path(real_index: LedeIndex, tmp_path: Path) -> None:
    reader = SpanReader(str(_tiny_model(tmp_path / "qa", "qa")))
    answerer = Answerer(SearchEngine(real_index), AnswerSettings(), reader)
    answer = answerer.ask("Who plays Ethan Hunt?", threshold=0.0)
    assert answer.answer  # a random model picks some span; the plumbing is what is tested
    citation = answer.citations[0]
    article = real_index.store.get_article(citation.hit.record.article_id)
    assert article is not None
    assert article.text[citation.start : citation.end] == citation.quote
    assert answer.answer in citation.quote
    assert answerer.ask("Who plays Ethan Hunt?", threshold=1.0).answer is None


def test_warm_up_loads_everything(real_embedder: SentenceTransformerEmbedder) -> None:
    assert real_embedder.dimension == 384 and real_embedder.max_tokens == 254
