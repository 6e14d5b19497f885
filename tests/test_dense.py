"""FAISS view against exact numpy search; tombstones, filters and approximate factories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.filters import Filters
from lede.indexer.index import LedeIndex
from lede.indexer.manifest import IndexSettings
from lede.indexer.models import Article
from lede.indexer.views.dense_search import DenseIndex, Tier, refine_k_factor, tier_for_size
from lede.service.engine import SearchEngine
from tests.views import dense_of


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    normalized: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalized


def _exact(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    return ids[np.argsort(-scores, axis=1)[:, :k]]


def test_flat_equals_exact_numpy_search() -> None:
    vectors, queries = _unit(500, 32, 0), _unit(20, 32, 1)
    ids = np.arange(1000, 1500)
    dense = DenseIndex(32)
    dense.add(ids, vectors)
    found, scores = dense.search(queries, 10)
    assert (found == _exact(vectors, ids, queries, 10)).all()
    assert np.allclose(scores, np.sort(queries @ vectors.T, axis=1)[:, ::-1][:, :10], atol=1e-5)


def test_tombstones_and_filters_apply_before_top_k() -> None:
    vectors, queries = _unit(300, 16, 2), _unit(5, 16, 3)
    ids = np.arange(300)
    dense = DenseIndex(16)
    dense.add(ids, vectors)
    deleted = np.arange(0, 300, 2)
    dense.delete(deleted)
    allowed = np.zeros(300, dtype=bool)
    allowed[::3] = True  # odd multiples of 3 survive both
    found, _ = dense.search(queries, 10, allowed)
    survivors = ids[(ids % 2 == 1) & (ids % 3 == 0)]
    assert (found == _exact(vectors[survivors], survivors, queries, 10)).all()
    assert dense.live_count == 150


def test_adding_known_ids_is_idempotent_and_round_trip_keeps_results() -> None:
    vectors = _unit(50, 8, 4)
    dense = DenseIndex(8)
    dense.add(np.arange(50), vectors)
    dense.add(np.arange(50), vectors)
    assert dense.ntotal == 50
    loaded = DenseIndex.from_bytes(dense.to_bytes(), 8, "Flat")
    assert (loaded.search(vectors[:3], 5)[0] == dense.search(vectors[:3], 5)[0]).all()


def test_hnsw_recall_against_exact_search() -> None:
    vectors, queries = _unit(3000, 32, 5), _unit(50, 32, 6)
    ids = np.arange(3000)
    hnsw = DenseIndex(32, "HNSW32")
    hnsw.add(ids, vectors)
    found, _ = hnsw.search(queries, 10, ef_search=128)
    truth = _exact(vectors, ids, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95


def test_ivf_needs_enough_training_vectors_and_bad_factory_is_explained() -> None:
    ivf = DenseIndex(8, "IVF16,Flat")
    with pytest.raises(ValueError, match="trained on at least 624"):
        ivf.add(np.arange(10), _unit(10, 8, 7))
    with pytest.raises(ValueError, match="invalid FAISS factory"):
        DenseIndex(8, "NotAnIndex")


def test_filtered_ivf_search_keeps_the_index_nprobe() -> None:
    """A filter passes search parameters; they must not reset nprobe to FAISS's default of 1."""
    vectors, queries = _unit(2000, 16, 8), _unit(20, 16, 9)
    ids = np.arange(2000)
    ivf = DenseIndex(16, "IVF16,Flat")  # explicit IVF: nprobe min(64, nlist) = every list
    ivf.add(ids, vectors)
    allowed = np.ones(2000, dtype=bool)
    allowed[::5] = False
    found, _ = ivf.search(queries, 10, allowed)
    survivors = ids[allowed]
    assert (found == _exact(vectors[survivors], survivors, queries, 10)).all()


def test_auto_factory_tiers_by_size() -> None:
    assert tier_for_size(0).factory == "Flat"
    assert tier_for_size(99_999).factory == "Flat"
    assert tier_for_size(100_000).factory_for(384) == "IVF1024,PQ96x4fs,Refine(SQ8)"
    assert tier_for_size(1_000_000) == Tier(1_000_000, "IVF4096,PQ{pq}x4fs,Refine(SQ8)", nprobe=128)
    assert tier_for_size(1_000_000).factory_for(1022) == "IVF4096,PQ511x4fs,Refine(SQ8)"
    small = DenseIndex(8)
    assert (small.requested, small.factory, small.factory_due()) == ("auto", "Flat", None)
    large = DenseIndex(8, expected_size=150_000)
    assert large.factory == "IVF1024,PQ2x4fs,Refine(SQ8)"
    assert large.nprobe == 128


REFINED = "IVF16,PQ16x4fs,Refine(SQ8)"


def test_refined_ivf_applies_filters_and_tombstones_through_the_refine_layer() -> None:
    """The refine layer passes on only its own parameters; the filter must still apply."""
    vectors, queries = _unit(3000, 32, 10), _unit(30, 32, 11)
    ids = np.arange(3000) * 3 + 5  # FAISS's internal ids differ from ours
    dense = DenseIndex(32, REFINED)
    dense.add(ids, vectors)
    assert dense.nprobe == 16  # min(64, nlist): every list, so only quantization is approximate
    dense.delete(ids[::2])
    allowed = np.zeros(ids.max() + 1, dtype=bool)
    allowed[ids[::3]] = True
    found, _ = dense.search(queries, 10, allowed)
    survivors = ids[1::2][(np.arange(1, 3000, 2) % 3) == 0]
    assert np.isin(found, survivors).all()
    truth = _exact(vectors[(survivors - 5) // 3], survivors, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.9
    few = np.zeros_like(allowed)
    few[survivors[:3]] = True
    found, _ = dense.search(queries[:2], 10, few)
    assert (np.sort(found[:, :3], axis=1) == np.sort(survivors[:3])).all()
    assert (found[:, 3:] == -1).all()


def test_refined_search_rescores_as_many_candidates_for_a_short_list_as_for_a_long_one() -> None:
    vectors, queries = _unit(3000, 32, 12), _unit(30, 32, 13)
    dense = DenseIndex(32, REFINED)
    dense.add(np.arange(3000), vectors)
    assert refine_k_factor(10) == refine_k_factor(100) * 10 == 20
    short, _ = dense.search(queries, 10)
    long, _ = dense.search(queries, 100)
    assert (short == long[:, :10]).all()
    loaded = DenseIndex.from_bytes(dense.to_bytes(), 32, REFINED)
    assert (loaded.search(queries, 10)[0] == short).all()


def test_refined_ivf_on_the_real_model_finds_what_exact_search_finds(
    tmp_path: Path,
    real_embedder: SentenceTransformerEmbedder,
    real_index: LedeIndex,
    sample_articles: list[Article],
    sample_questions: list[dict[str, str]],
) -> None:
    """The sample articles (44 chunks) in a refined IVF of one list: the same best passage as
    the exact index for every sample question, and a filter still applies."""
    settings = IndexSettings(faiss_factory="IVF1,PQ96x4fs,Refine(SQ8)")
    with LedeIndex.create(tmp_path / "ivf", embedder=real_embedder, settings=settings) as ivf:
        ivf.add(sample_articles)
        assert dense_of(ivf).nprobe == 1
        refined, exact = SearchEngine(ivf), SearchEngine(real_index)
        for question in sample_questions:
            ours = refined.search(question["question"], mode="dense", k=3).hits
            truth = exact.search(question["question"], mode="dense", k=3).hits
            assert ours[0].record.chunk_id == truth[0].record.chunk_id
        sports = Filters(sources=("Sports Desk",))
        hits = refined.search("record win", mode="dense", k=50, filters=sports).hits
        assert hits and {h.record.source for h in hits} == {"Sports Desk"}
