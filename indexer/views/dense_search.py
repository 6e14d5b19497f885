"""FAISS search over chunk embeddings keyed by chunk row id (the engine of the dense view).

Inner product on L2-normalized vectors (cosine). Deletes are tombstones: the vector stays in
FAISS and every search passes an `IDSelectorBitmap` of the allowed ids, which also carries the
query's filters, so filtered searches return k hits whenever k allowed vectors exist. HNSW
cannot remove vectors, so one delete path serves every factory; `LedeIndex.checkpoint` rebuilds.

The default factory is "auto": exact `Flat` while the index is small, then IVF tiers that find
candidates with 4-bit fast-scan PQ and re-score them with SQ8 codes once it grows past the
thresholds measured by `lede bench ann` (decision 28). `LedeIndex.checkpoint` switches tiers by
rebuilding the view from SQLite. Saved bytes end with the ids of the tombstones, if any.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np

from lede.indexer.arrays import grown

logger = logging.getLogger(__name__)

AUTO = "auto"
DEFAULT_FACTORY = AUTO
_TOMBSTONES = b"LEDE-TOMBSTONES-1"  # ends saved bytes that carry tombstone ids


@dataclass(frozen=True, slots=True)
class Tier:
    """The factory "auto" uses from `min_vectors` live vectors on, and its default nprobe."""

    min_vectors: int
    factory: str  # "{pq}" stands for the product quantizer's sub-vector count
    nprobe: int = 1

    def factory_for(self, dimension: int) -> str:
        """The factory string for vectors of this dimension."""
        return self.factory.format(pq=pq_subvectors(dimension))


def pq_subvectors(dimension: int) -> int:
    """Four dimensions per 4-bit sub-quantizer (96 for MiniLM's 384), as `bench ann` measured."""
    return next(dimension // width for width in (4, 2, 1) if dimension % width == 0)


# Largest first. From `lede bench ann` on 100k and 1M MiniLM vectors (eval/results/bench_ann.json,
# decisions 15 and 28): fast-scan 4-bit PQ finds candidates, SQ8 codes re-score them. 100k:
# recall@10 0.971 at 4,100 QPS on one thread (IVF1024,SQ8 at nprobe 64: 0.962 at 3,206); 1M:
# 0.941 at 2,227 QPS (IVF4096,SQ8: 0.941 at 770; Flat: 19 QPS).
AUTO_TIERS: tuple[Tier, ...] = (
    Tier(1_000_000, "IVF4096,PQ{pq}x4fs,Refine(SQ8)", nprobe=128),
    Tier(100_000, "IVF1024,PQ{pq}x4fs,Refine(SQ8)", nprobe=128),
    Tier(0, "Flat"),
)
DEFAULT_EF_SEARCH = 128  # HNSW32 at 100k: recall@10 0.974 (bench_ann)
REFINE_CANDIDATES = 200


def tier_for_size(live_vectors: int) -> Tier:
    """The tier "auto" picks for an index of this many live vectors."""
    return next(tier for tier in AUTO_TIERS if live_vectors >= tier.min_vectors)


def refine_k_factor(k: int) -> float:
    """Hits per wanted hit that a refining index ("...,Refine(SQ8)") re-scores: at least 2
    per hit and REFINE_CANDIDATES in all, so a top-10 search re-scores as many as a top-100."""
    return max(2.0, REFINE_CANDIDATES / max(k, 1))


def _layers(index: faiss.Index) -> tuple[faiss.IndexRefine | None, faiss.Index]:
    """Under the IDMap2: the refine layer (or None) and the index that finds the candidates."""
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexRefine):
        return inner, faiss.downcast_index(inner.base_index)
    return None, inner


def _new_faiss_index(dimension: int, factory: str, nprobe: int) -> faiss.Index:
    try:
        index = faiss.index_factory(dimension, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise ValueError(f"invalid FAISS factory string {factory!r}: {error}") from None
    _, inner = _layers(index)
    if isinstance(inner, faiss.IndexIVF):
        inner.nprobe = min(nprobe, inner.nlist)
    elif isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = DEFAULT_EF_SEARCH
    return index


def search_parameters(
    index: faiss.Index,
    k: int,
    selector: faiss.IDSelector | None,
    ef_search: int | None,
    nprobe: int | None,
) -> faiss.SearchParameters | None:
    """Per-query parameters for `index` (under an IDMap2 or bare, as `bench ann` builds them);
    unset knobs keep the values stored in the index.

    A refine layer passes only its own parameters on to the index it refines, and the
    IDMap2 translates the selector only at the top, so under a refine layer the selector
    goes, translated to FAISS's internal ids, into the inner parameters.
    """
    refine, inner = _layers(index)
    if refine is not None and selector is not None:
        selector = faiss.IDSelectorTranslated(index.id_map, selector)  # type: ignore[attr-defined]
    params: faiss.SearchParameters
    if isinstance(inner, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = ef_search or inner.hnsw.efSearch  # type: ignore[attr-defined]
    elif isinstance(inner, faiss.IndexIVF):
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe or inner.nprobe
    elif selector is None and refine is None:
        return None
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    if refine is None:
        return params
    refined = faiss.IndexRefineSearchParameters()  # type: ignore[attr-defined]
    refined.k_factor = refine_k_factor(k)
    refined.base_index_params = params
    # SWIG keeps raw pointers to both: hold them as long as the parameters live.
    refined.referenced_objects = [params, selector]  # type: ignore[attr-defined]
    return refined


@contextmanager
def one_faiss_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread for the block, then as before (decision 14). Set per search
    rather than once: FAISS and PyTorch share the OpenMP runtime, so a process-wide setting
    also took the answer model's cross-encoder down to one thread (/answer 1.8x slower)."""
    before = faiss.omp_get_max_threads()
    if before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class DenseIndex:
    """FAISS index over (row id, vector) pairs with tombstone deletes."""

    def __init__(
        self,
        dimension: int,
        factory: str = DEFAULT_FACTORY,
        *,
        expected_size: int = 0,
        template: bytes | None = None,
    ):
        """
        Args:
            factory: a FAISS factory string, or "auto" (a tier chosen by size).
            expected_size: with "auto", the number of vectors about to be added.
            template: a trained, empty index (`trained_template`) to start from instead: the
                quantizer a sharded index trains once for all its shards.
        """
        self.dimension = dimension
        self.requested = factory
        if template is not None:
            self._index = faiss.deserialize_index(np.frombuffer(template, dtype=np.uint8))
            if self._index.ntotal:
                raise ValueError("a FAISS template must be empty")
            self.factory = _auto_factory_of(self._index, dimension)
        else:
            if factory == AUTO:
                tier = tier_for_size(expected_size)
                self.factory = tier.factory_for(dimension)
            else:
                tier, self.factory = Tier(0, factory, nprobe=64), factory
            self._index = _new_faiss_index(dimension, self.factory, tier.nprobe)
        self._present = np.zeros(0, dtype=bool)  # ids stored in FAISS
        self._live = np.zeros(0, dtype=bool)  # stored and not deleted
        self.tombstones = 0
        self._bitmap_cache: np.ndarray | None = None

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def live_count(self) -> int:
        return self.ntotal - self.tombstones

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    @property
    def nprobe(self) -> int | None:
        """The IVF lists a query visits by default (None for other index types)."""
        _, inner = _layers(self._index)
        return int(inner.nprobe) if isinstance(inner, faiss.IndexIVF) else None

    @property
    def exact(self) -> bool:
        """Whether FAISS holds the vectors themselves (Flat), so that search is exact."""
        _, inner = _layers(self._index)
        return isinstance(inner, faiss.IndexFlat)

    def exact_scores(self, query_vector: np.ndarray, doc_ids: np.ndarray) -> np.ndarray:
        """The query's inner products with these stored vectors, summed in float64 and
        rounded once to float32: the same bits for a vector wherever it is stored. FAISS's
        float32 kernels add up a vector's products in an order that depends on its position
        in the index, so its scores for one vector differ by an ulp between two indexes
        (one index and the shard holding that vector, say). Only for an `exact` index."""
        if not len(doc_ids):
            return np.zeros(0, dtype=np.float32)
        vectors = self._index.reconstruct_batch(np.asarray(doc_ids, dtype=np.int64))
        query = np.asarray(query_vector, dtype=np.float64).reshape(-1)
        return (vectors.astype(np.float64) @ query).astype(np.float32)

    def factory_due(self) -> str | None:
        """With "auto": the tier's factory when the live count has moved into another tier."""
        if self.requested != AUTO:
            return None
        wanted = tier_for_size(self.live_count).factory_for(self.dimension)
        return wanted if wanted != self.factory else None

    def __contains__(self, doc_id: int) -> bool:
        return doc_id < len(self._live) and bool(self._live[doc_id])

    def _ensure(self, size: int) -> None:
        self._present = grown(self._present, size, False)
        self._live = grown(self._live, size, False)

    def add(self, doc_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; ids already present are skipped (replay is idempotent)."""
        if not len(doc_ids):
            return
        doc_ids = np.asarray(doc_ids, dtype=np.int64)
        self._ensure(int(doc_ids.max()) + 1)
        new = ~self._present[doc_ids]
        doc_ids, vectors = doc_ids[new], np.ascontiguousarray(vectors[new], dtype=np.float32)
        if not len(doc_ids):
            return
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"expected {self.dimension}-d vectors, got {vectors.shape[1]}-d")
        if not self._index.is_trained:
            self.train(vectors)
        self._index.add_with_ids(vectors, doc_ids)
        self._present[doc_ids] = True
        self._live[doc_ids] = True
        self._bitmap_cache = None

    @property
    def training_size(self) -> int:
        """Vectors the quantizer needs to train on (FAISS wants 39 per IVF list)."""
        _, inner = _layers(self._index)
        return int(inner.nlist) * 39 if isinstance(inner, faiss.IndexIVF) else 256

    def train(self, vectors: np.ndarray) -> None:
        """Train a quantizer (IVF, PQ, SQ) on a sample of the vectors to be stored."""
        needed = self.training_size
        if len(vectors) < needed:
            raise ValueError(
                f"FAISS factory {self.factory!r} must be trained on at least {needed} vectors, "
                f"got {len(vectors)}; index more articles in the first batch or use 'Flat'"
            )
        self._index.train(vectors)

    @classmethod
    def trained_template(cls, dimension: int, tier: Tier, sample: np.ndarray) -> bytes:
        """A `tier` index trained on `sample` and holding nothing, serialized: the template
        every shard of a sharded index starts its dense view from (decision 45)."""
        index = cls(dimension, tier.factory_for(dimension))
        _, inner = _layers(index._index)
        if isinstance(inner, faiss.IndexIVF):
            inner.nprobe = min(tier.nprobe, inner.nlist)
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        return bytes(faiss.serialize_index(index._index))

    def delete(self, doc_ids: np.ndarray) -> None:
        """Tombstone these ids; unknown ids are ignored."""
        for doc_id in np.asarray(doc_ids, dtype=np.int64).tolist():
            if doc_id < len(self._live) and self._live[doc_id]:
                self._live[doc_id] = False
                self.tombstones += 1
                self._bitmap_cache = None

    def search(
        self,
        query_vectors: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ids and inner-product scores per query row; -1 pads missing hits."""
        queries = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        if k <= 0 or self.live_count == 0:
            empty = np.full((len(queries), 0), -1, dtype=np.int64)
            return empty, np.zeros((len(queries), 0), dtype=np.float32)
        bitmap = self._bitmap(allowed)
        selector = None
        if bitmap is not None:
            selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        k = min(k, self.ntotal)
        params = search_parameters(self._index, k, selector, ef_search, nprobe)
        with one_faiss_thread():
            scores, ids = self._index.search(queries, k, params=params)
        return ids, scores

    def _bitmap(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            if self.tombstones == 0:
                return None
            if self._bitmap_cache is None:
                self._bitmap_cache = np.packbits(self._live, bitorder="little")
            return self._bitmap_cache
        mask = self._live.copy()
        limit = min(len(mask), len(allowed))
        mask[:limit] &= allowed[:limit]
        mask[limit:] = False
        return np.packbits(mask, bitorder="little")

    def to_bytes(self) -> bytes:
        """The FAISS index, then (when there are any) the ids of its tombstones."""
        data = bytes(faiss.serialize_index(self._index))
        dead = np.flatnonzero(self._present & ~self._live).astype("<i8")
        if not len(dead):
            return data  # the format of files written before tombstones were saved
        return data + dead.tobytes() + struct.pack("<Q", len(dead)) + _TOMBSTONES

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int, factory: str) -> DenseIndex:
        dead = np.zeros(0, dtype=np.int64)
        if data.endswith(_TOMBSTONES):
            end = len(data) - len(_TOMBSTONES)
            (count,) = struct.unpack("<Q", data[end - 8 : end])
            start = end - 8 - 8 * count
            dead = np.frombuffer(data[start : end - 8], dtype="<i8").astype(np.int64)
            data = data[:start]
        dense = cls.__new__(cls)
        dense.dimension = dimension
        dense.requested = factory
        dense._index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        dense.factory = _auto_factory_of(dense._index, dimension) if factory == AUTO else factory
        ids = faiss.vector_to_array(dense._index.id_map).astype(np.int64)  # type: ignore[attr-defined]
        size = int(ids.max()) + 1 if len(ids) else 0
        dense._present = np.zeros(size, dtype=bool)
        dense._present[ids] = True
        dense._live = dense._present.copy()
        dense._live[dead] = False
        dense.tombstones = len(dead)
        dense._bitmap_cache = None
        return dense

    def live_ids(self) -> np.ndarray:
        return np.flatnonzero(self._live)


def _auto_factory_of(index: faiss.Index, dimension: int) -> str:
    """Which "auto" tier a stored index was built as."""
    refine, inner = _layers(index)
    if isinstance(inner, faiss.IndexIVF):
        refined = refine is not None
        for tier in AUTO_TIERS:
            if tier.factory.startswith(f"IVF{inner.nlist},") and refined == (
                "Refine(" in tier.factory
            ):
                return tier.factory_for(dimension)
        # The plain IVF-SQ8 tiers of earlier versions: no longer a tier, so `factory_due`
        # names the current one and the next checkpoint rebuilds the view from SQLite.
        return f"IVF{inner.nlist},SQ8"
    return "Flat"
