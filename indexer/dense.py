"""The dense view: a FAISS index of chunk embeddings keyed by chunk row id.

Inner product on L2-normalized vectors (cosine). Deletes are tombstones: the vector stays in
FAISS and every search passes an `IDSelectorBitmap` of the allowed ids, which also carries the
query's filters, so filtered searches return k hits whenever k allowed vectors exist. HNSW
cannot remove vectors, so one delete path serves every factory; `LedeIndex.compact` rebuilds.
"""

from __future__ import annotations

import logging

import faiss
import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_FACTORY = "Flat"


def _search_parameters(
    index: faiss.Index, selector: faiss.IDSelector | None, ef_search: int | None, nprobe: int | None
) -> faiss.SearchParameters | None:
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if isinstance(inner, faiss.IndexHNSW):
        params: faiss.SearchParameters = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        if ef_search:
            params.efSearch = ef_search  # type: ignore[attr-defined]
    elif isinstance(inner, faiss.IndexIVF):
        params = faiss.SearchParametersIVF()
        if nprobe:
            params.nprobe = nprobe
    elif selector is None:
        return None
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    return params


class DenseIndex:
    """FAISS index over (row id, vector) pairs with tombstone deletes."""

    def __init__(self, dimension: int, factory: str = DEFAULT_FACTORY):
        self.dimension = dimension
        self.factory = factory
        try:
            self._index = faiss.index_factory(
                dimension, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT
            )
        except RuntimeError as error:
            raise ValueError(f"invalid FAISS factory string {factory!r}: {error}") from None
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

    def __contains__(self, doc_id: int) -> bool:
        return doc_id < len(self._live) and bool(self._live[doc_id])

    def _ensure(self, size: int) -> None:
        if size > len(self._present):
            capacity = max(size, 2 * len(self._present), 16)
            for name in ("_present", "_live"):
                grown = np.zeros(capacity, dtype=bool)
                current = getattr(self, name)
                grown[: len(current)] = current
                setattr(self, name, grown)

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
            self._train(vectors)
        self._index.add_with_ids(vectors, doc_ids)
        self._present[doc_ids] = True
        self._live[doc_ids] = True
        self._bitmap_cache = None

    def _train(self, vectors: np.ndarray) -> None:
        inner = faiss.downcast_index(self._index.index)  # type: ignore[attr-defined]
        needed = getattr(inner, "nlist", 1) * 39 if isinstance(inner, faiss.IndexIVF) else 256
        if len(vectors) < needed:
            raise ValueError(
                f"FAISS factory {self.factory!r} must be trained on at least {needed} vectors, "
                f"got {len(vectors)}; index more articles in the first batch or use 'Flat'"
            )
        self._index.train(vectors)

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
        params = _search_parameters(self._index, selector, ef_search, nprobe)
        scores, ids = self._index.search(queries, min(k, self.ntotal), params=params)
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
        return bytes(faiss.serialize_index(self._index))

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int, factory: str) -> DenseIndex:
        dense = cls.__new__(cls)
        dense.dimension = dimension
        dense.factory = factory
        dense._index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        ids = faiss.vector_to_array(dense._index.id_map).astype(np.int64)  # type: ignore[attr-defined]
        size = int(ids.max()) + 1 if len(ids) else 0
        dense._present = np.zeros(size, dtype=bool)
        dense._present[ids] = True
        dense._live = dense._present.copy()
        dense.tombstones = 0
        dense._bitmap_cache = None
        return dense

    def live_ids(self) -> np.ndarray:
        return np.flatnonzero(self._live)
