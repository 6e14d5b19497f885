"""Hybrid search: fusion's score scaling, documents one retriever missed, and the engine's
query encoding beside BM25."""

from __future__ import annotations

import threading
import typing
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from lede.indexer import index as index_module
from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import Article
from lede.indexer.ranked import RankedList
from lede.indexer.views.contract import vector_views, view_types
from lede.service.engine import MODES, EngineSettings, ModeName, SearchEngine
from lede.service.fusion import convex_combination, convex_weights, reciprocal_rank_fusion
from lede.service.schemas import AnswerRequest, SearchRequest
from tests.views import lexical_of


def test_max_scaling_keeps_each_list_relative_to_zero() -> None:
    lists = {
        "bm25": RankedList([1, 2], [10.0, 5.0], truncated=False),
        "dense": RankedList([2, 1], [0.8, 0.6], truncated=False),
    }
    fused = convex_combination(lists, weights=convex_weights(["bm25", "dense"], 0.5))
    # bm25 scales to 1.0 / 0.5, dense to 1.0 / 0.75 (not 1 / 0 as min-max would make it)
    assert fused == pytest.approx({1: 0.5 * 1.0 + 0.5 * 0.75, 2: 0.5 * 0.5 + 0.5 * 1.0})
    minmax = convex_combination(
        lists, weights=convex_weights(["bm25", "dense"], 0.5), normalization="minmax"
    )
    assert minmax == pytest.approx({1: 0.5, 2: 0.5})


def test_negative_cosines_count_as_zero_and_alpha_weights_dense() -> None:
    lists = {"dense": RankedList([1, 2], [0.5, -0.2], truncated=False)}
    assert convex_combination(
        lists, weights=convex_weights(["bm25", "dense"], 0.7)
    ) == pytest.approx({1: 0.7, 2: 0.0})


def test_a_document_missing_from_a_truncated_list_gets_its_lowest_score() -> None:
    bm25 = RankedList([1, 2], [4.0, 2.0])  # stopped at depth 2: doc 3 scores at most 2.0
    dense = RankedList([3, 1, 2], [0.9, 0.3, 0.3], truncated=False)
    fused = convex_combination(
        {"bm25": bm25, "dense": dense}, weights=convex_weights(["bm25", "dense"], 0.5)
    )
    assert fused[3] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    complete = RankedList([1, 2], [4.0, 2.0], truncated=False)  # doc 3 matched no term
    fused = convex_combination(
        {"bm25": complete, "dense": dense}, weights=convex_weights(["bm25", "dense"], 0.5)
    )
    assert fused[3] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)


def test_empty_lists_and_rrf() -> None:
    assert (
        convex_combination(
            {"bm25": RankedList([], []), "dense": RankedList([], [])},
            weights=convex_weights(["bm25", "dense"], 0.5),
        )
        == {}
    )
    fused = reciprocal_rank_fusion(
        {"bm25": RankedList([1, 2], [3.0, 1.0]), "dense": RankedList([2], [0.5])}, k=10
    )
    assert fused == pytest.approx({1: 1 / 11, 2: 1 / 12 + 1 / 11})


def test_settings_refuse_an_unknown_normalization() -> None:
    with pytest.raises(ValueError, match="normalization must be one of max, minmax"):
        EngineSettings(normalization="zscore")  # type: ignore[arg-type]


def test_engine_hybrid_uses_the_chosen_scaling(real_index: LedeIndex) -> None:
    engine = SearchEngine(real_index)
    query = "film shoot in Rome"
    default = engine.search(query, k=5)
    assert engine.settings.normalization == "max" and engine.settings.alpha == 0.75
    assert all(0.0 <= hit.score <= 1.0 for hit in default.hits)
    assert {"bm25", "dense"} <= set(default.hits[0].scores)
    # Recompute the top hit's fused score from the per-retriever scores it reports.
    bm25 = engine.search(query, mode="bm25", k=100)
    dense = engine.search(query, mode="dense", k=100)
    top = default.hits[0].record.chunk_id
    best_bm25 = max(h.score for h in bm25.hits)
    best_dense = max(h.score for h in dense.hits)
    bm25_score = next(h.score for h in bm25.hits if h.record.chunk_id == top)
    dense_score = next(h.score for h in dense.hits if h.record.chunk_id == top)
    expected = 0.3 * bm25_score / best_bm25 + 0.7 * max(dense_score, 0) / best_dense
    assert default.hits[0].score == pytest.approx(expected, rel=1e-5)
    minmax = engine.search(query, k=5, overrides={"normalization": "minmax", "alpha": 0.5})
    assert minmax.hits and all(0.0 <= hit.score <= 1.0 for hit in minmax.hits)


class RecordingEmbedder(HashingEmbedder):
    """Records the thread each embedding ran on; fails on a text containing "explode"."""

    def __init__(self) -> None:
        super().__init__(dimension=64, max_tokens=64)
        self.threads: list[str] = []

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        if any("explode" in text for text in texts):
            raise RuntimeError("encoder failed")
        return super().embed(texts, progress=progress)


def test_hybrid_encodes_the_query_beside_bm25_when_bm25_has_much_to_do(
    tmp_path: Path, sample_articles: list[Article], monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = RecordingEmbedder()
    with LedeIndex.create(tmp_path / "index", embedder=embedder) as index:
        index.add(sample_articles)
        engine = SearchEngine(index)
        query = "Rome car chase"
        terms = set(index.analyzer(query))
        postings = sum(len(lexical_of(index).search(term, 1000)[0]) for term in terms)
        assert lexical_of(index).postings_count(query) == postings > 0
        embedder.threads.clear()
        inline = engine.search(query, k=5)  # a small index: BM25 is quicker than a hand-over
        assert embedder.threads == [threading.current_thread().name]
        monkeypatch.setattr(index_module, "OVERLAP_MIN_POSTINGS", postings)
        embedder.threads.clear()
        overlapped = engine.search(query, k=5)
        assert len(embedder.threads) == 1
        assert embedder.threads[0].startswith("lede-query-encode")
        assert [h.record.chunk_id for h in overlapped.hits] == [
            h.record.chunk_id for h in inline.hits
        ]
        assert [h.score for h in overlapped.hits] == [h.score for h in inline.hits]
        embedder.threads.clear()
        engine.search(query, mode="dense", k=5)
        assert embedder.threads == [threading.current_thread().name]  # nothing to overlap
        with pytest.raises(RuntimeError, match="encoder failed"):
            engine.search(f"explode the {query}", k=5)
        assert engine.search(query, k=5).hits  # still serving


def test_real_model_hybrid_with_overlapped_encoding_matches_a_given_vector(
    real_index: LedeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "OVERLAP_MIN_POSTINGS", 0)
    engine = SearchEngine(real_index)
    for query in ("Who plays Ethan Hunt?", "river cleanup volunteers", "interest rates"):
        overlapped = engine.search(query, k=10)
        given = engine.search(query, k=10, query_vector=engine.embed_query(query))
        assert [h.record.chunk_id for h in overlapped.hits] == [
            h.record.chunk_id for h in given.hits
        ]
        assert [h.score for h in overlapped.hits] == pytest.approx([h.score for h in given.hits])


def test_service_settings_take_the_fusion_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from lede.service.settings import Settings

    defaults = Settings(index=tmp_path)
    assert (defaults.normalization, defaults.alpha) == ("max", 0.75)
    monkeypatch.setenv("LEDE_NORMALIZATION", "minmax")
    monkeypatch.setenv("LEDE_ALPHA", "0.5")
    settings = Settings(index=tmp_path)
    assert (settings.normalization, settings.alpha) == ("minmax", 0.5)
    monkeypatch.setenv("LEDE_NORMALIZATION", "zscore")
    with pytest.raises(ValidationError, match="normalization"):
        Settings(index=tmp_path)


def test_modes_their_schemas_and_fusion_weights_follow_the_registered_views() -> None:
    """A retriever is one view module and its registration: the modes, the request schema's
    enum, the MCP tool's type and the fusion weights all come from `view_types()`."""
    assert (*view_types(), "hybrid") == MODES
    assert typing.get_args(ModeName) == MODES
    assert SearchRequest.model_json_schema()["properties"]["mode"]["enum"] == list(MODES)
    assert AnswerRequest.model_json_schema()["properties"]["mode"]["enum"] == list(MODES)
    assert vector_views() == {"dense"}
    assert convex_weights(list(view_types()), 0.75, vector_views()) == {"bm25": 0.25, "dense": 0.75}
    # a third, lexical view shares the rest with BM25; views without an RRF weight weigh 1
    weights = convex_weights(["bm25", "splade", "dense"], 0.6, vector_views())
    assert weights == pytest.approx({"bm25": 0.2, "splade": 0.2, "dense": 0.6})
    lists = {"bm25": RankedList([1, 2], [3.0, 2.0]), "dense": RankedList([2, 1], [0.9, 0.8])}
    heavier = EngineSettings(fusion="rrf", rrf_weights={"dense": 2.0})
    fused = reciprocal_rank_fusion(lists, k=60.0, weights=heavier.rrf_weights)
    assert fused[2] == pytest.approx(1 / 62 + 2 / 61) and fused[2] > fused[1]
    with pytest.raises(ValueError, match="weights must be >= 0"):
        EngineSettings(rrf_weights={"bm25": -1.0})
