"""The bi-encoder's weighted cosine beside the cross-encoder's logit (decision 48): the scorer's
ranking uses it to choose its epoch; the shipped service scores without it (decision 52)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from lede.indexer.encoders.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder
from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.index import LedeIndex
from lede.service.answers.answerer import Answerer
from lede.service.answers.model import (
    BUNDLED,
    CONFIG,
    SIMILARITY_TOP,
    WEIGHTS,
    AnswerModel,
    ScorerConfig,
    add_similarity,
    top_rows,
)
from lede.service.answers.reader import READER_WEIGHTS
from lede.service.engine import SearchEngine


def _bundled_with(
    directory: Path, embedder: SentenceTransformerEmbedder, **config: float
) -> AnswerModel:
    """The bundled weights under a scorer.json with these fields changed."""
    for name in (WEIGHTS, READER_WEIGHTS):
        (directory / name).symlink_to(BUNDLED / name)
    raw = json.loads((BUNDLED / CONFIG).read_text()) | config
    (directory / CONFIG).write_text(json.dumps(raw))
    return AnswerModel(directory, embedder=embedder)


def test_the_shipped_service_scores_with_the_cross_encoder_alone() -> None:
    config = AnswerModel().config
    assert config.similarity_weight == 0.0
    assert config.training["settings"]["similarity_weight"] == 12.0  # the scorer's epoch choice


def test_a_config_without_the_weight_is_the_cross_encoder_alone(tmp_path: Path) -> None:
    raw = json.loads((BUNDLED / CONFIG).read_text())
    del raw["similarity_weight"]
    (tmp_path / CONFIG).write_text(json.dumps(raw))
    config = ScorerConfig.read(tmp_path)
    assert config.similarity_weight == 0.0
    again = dataclasses.replace(config, similarity_weight=3.5)
    (tmp_path / CONFIG).write_text(json.dumps(again.to_json()))
    assert ScorerConfig.read(tmp_path) == again


def test_the_bi_encoder_is_the_given_embedder_only_when_it_is_the_base_model() -> None:
    """Building either loads nothing (embedders load on first use)."""
    same = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    assert AnswerModel(embedder=same).bi_encoder is same
    other = AnswerModel(embedder=HashingEmbedder(dimension=64)).bi_encoder
    assert isinstance(other, SentenceTransformerEmbedder) and other.name == DEFAULT_MODEL
    assert AnswerModel().bi_encoder.name == DEFAULT_MODEL


@pytest.mark.model
def test_an_answerer_shares_its_index_embedder(real_index: LedeIndex) -> None:
    answerer = Answerer(SearchEngine(real_index))
    assert answerer.model.bi_encoder is real_index.embedder


@pytest.mark.model
def test_logits_add_the_weighted_cosine(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    model = _bundled_with(tmp_path, real_embedder, similarity_weight=12.0)
    question = "Who directs the new Mission: Impossible film?"
    candidates = [
        ("Mission: Impossible", "The film is directed by Christopher McQuarrie."),
        ("Mission: Impossible", "Tickets went on sale on Monday in most cities."),
        ("", ""),
        ("Mission: Impossible", "Tom Cruise returns as Ethan Hunt."),
        ("Mission: Impossible", "McQuarrie also wrote the screenplay with Erik Jendresen."),
    ]
    cosine = model.similarities(question, candidates)
    assert cosine.shape == (5,) and np.all(np.abs(cosine) <= 1.0 + 1e-6)
    assert cosine[0] > cosine[1]  # the answer is nearer the question than the off-topic one
    cross = model.cross_logits(question, candidates)
    rows = top_rows(cross, SIMILARITY_TOP)
    assert len(rows) == SIMILARITY_TOP == 3
    np.testing.assert_allclose(
        model.logits(question, candidates),
        add_similarity(cross, rows, cosine[rows], 12.0),
        rtol=1e-5,
    )
    # the same weights without the term: the cross-encoder alone
    alone = AnswerModel(embedder=real_embedder)  # the shipped model: weight 0
    np.testing.assert_allclose(
        alone.logits(question, candidates), model.cross_logits(question, candidates), rtol=1e-5
    )


def test_only_the_top_candidates_are_re_scored_and_none_is_lifted_over_them() -> None:
    logits = np.array([0.0, 5.0, -1.0, 4.0, 3.0, 2.0, 4.5])
    rows = top_rows(logits, 4)
    assert rows.tolist() == [1, 6, 3, 4]
    cosine = np.array([0.1, 0.9, 0.5, 0.3])
    scores = add_similarity(logits, rows, cosine, 10.0)
    assert scores[rows].tolist() == pytest.approx([6.0, 13.5, 9.0, 6.0])
    rest = [0, 2, 5]
    assert scores[rest].tolist() == pytest.approx([1.0, 0.0, 3.0])  # + 10 x the least cosine
    assert max(scores[rest]) <= min(scores[rows])
    assert logits.tolist() == [0.0, 5.0, -1.0, 4.0, 3.0, 2.0, 4.5]  # not changed in place
