"""FAISS view against exact numpy search; tombstones, filters and approximate factories."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.dense import DenseIndex, Tier, tier_for_size


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
    assert tier_for_size(100_000).factory == "IVF1024,SQ8"
    assert tier_for_size(1_000_000) == Tier(1_000_000, "IVF4096,SQ8", nprobe=128)
    small = DenseIndex(8)
    assert (small.requested, small.factory, small.factory_due()) == ("auto", "Flat", None)
    large = DenseIndex(8, expected_size=150_000)
    assert large.factory == "IVF1024,SQ8"
    assert large.nprobe == 64
