"""The "dense" view: FAISS inner-product search over the chunks' embeddings (`dense_search.py`)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from lede.indexer.manifest import Manifest
from lede.indexer.ranked import RankedList
from lede.indexer.views.contract import ChunkRows, Input, ViewQuery, ViewSpec
from lede.indexer.views.dense_search import AUTO, DenseIndex, tier_for_size

# Flat search fetches this many more than asked, so that one FAISS call nearly always holds
# the exact top k; FAISS_ERROR bounds how far a float32 inner product of unit vectors may
# stray from the exact one (d * 2**-24 is 2.3e-5 for 384 dimensions, 6.1e-5 for 1,024).
EXACT_MARGIN = 8
FAISS_ERROR = 1e-4


class DenseView:
    """Embeddings in FAISS (Flat, or an IVF tier by size); deletes are tombstones until a
    checkpoint rebuilds the view."""

    name: ClassVar[str] = "dense"
    suffix: ClassVar[str] = "faiss"
    inputs: ClassVar[frozenset[Input]] = frozenset({"vector"})
    query_input: ClassVar[Input] = "vector"
    summary: ClassVar[str] = "meaning"

    def __init__(self, dense: DenseIndex, template: bytes | None = None):
        self.dense = dense
        self._template = template
        self._template_factory = (
            None if template is None else DenseIndex(dense.dimension, template=template).factory
        )

    @classmethod
    def create(cls, spec: ViewSpec, expected_size: int = 0) -> DenseView:
        settings, template = spec.manifest.settings, spec.templates.get(cls.name)
        dense = DenseIndex(
            spec.manifest.model.dimension,
            settings.faiss_factory,
            expected_size=expected_size,
            template=template,
        )
        return cls(dense, template)

    # --- the form every shard of a sharded index shares (decision 45) ---------------------

    @classmethod
    def sized_by_corpus(cls, manifest: Manifest) -> bool:
        """Whether the view's form follows the corpus's size (the "auto" factory)."""
        return manifest.settings.faiss_factory == AUTO

    @classmethod
    def shared_form(cls, manifest: Manifest, corpus_size: int) -> str | None:
        """The factory every shard's view starts from, trained once, for a sharded index of
        `corpus_size` chunks: the size tier one index of them would use (the "auto" factory),
        None below the first approximate tier (Flat needs no training) or with a factory the
        index was created with."""
        if not cls.sized_by_corpus(manifest):
            return None
        tier = tier_for_size(corpus_size)
        return None if tier.min_vectors == 0 else tier.factory_for(manifest.model.dimension)

    @classmethod
    def form_training_size(cls, manifest: Manifest, form: str) -> int:
        """Vectors the `form` must be trained on."""
        return DenseIndex(manifest.model.dimension, form).training_size

    @classmethod
    def shared_template(cls, manifest: Manifest, corpus_size: int, sample: np.ndarray) -> bytes:
        """The `shared_form` for `corpus_size` chunks, trained on `sample` (the vectors one
        index would train on) and empty, as bytes: what `ShardIndex.install_template` starts
        each shard's view from."""
        tier = tier_for_size(corpus_size)
        return DenseIndex.trained_template(manifest.model.dimension, tier, sample)

    @classmethod
    def from_bytes(cls, data: bytes, spec: ViewSpec) -> DenseView:
        dimension, factory = spec.manifest.model.dimension, spec.manifest.settings.faiss_factory
        return cls(DenseIndex.from_bytes(data, dimension, factory), spec.templates.get(cls.name))

    def to_bytes(self) -> bytes:
        return self.dense.to_bytes()

    def add(self, rows: ChunkRows) -> None:
        assert rows.vectors is not None, "the dense view indexes vectors"
        self.dense.add(rows.ids, rows.vectors)

    def delete(self, ids: np.ndarray) -> None:
        self.dense.delete(ids)

    def __contains__(self, chunk_id: int) -> bool:
        return chunk_id in self.dense

    def live_ids(self) -> np.ndarray:
        return self.dense.live_ids()

    def search(self, query: ViewQuery, k: int, allowed: np.ndarray | None) -> RankedList:
        """Always treated as cut off: a short list from IVF or HNSW (few vectors in the probed
        cells after filtering) does not mean the rest scored 0. Empty slots are dropped.

        Tied scores go to the lower id first, as in every view, at the cut too: FAISS keeps
        ties in any order, so it is asked for more until the k-th score's ties are all in.
        With Flat, the scores are recomputed exactly (`DenseIndex.exact_scores`), so one
        index and a sharded one agree to the last bit, and FAISS is asked for more until no
        vector it left out can score (within its rounding) as high as the k-th.
        """
        assert query.vector is not None, "the dense view searches with the query's embedding"
        dense = self.dense
        exact = dense.exact
        fetch = k + (EXACT_MARGIN if exact else 1)
        rescored: np.ndarray | None = None  # the exact scores of `found`, once computed
        while True:
            ids, scores = dense.search(
                query.vector, fetch, allowed, ef_search=query.ef_search, nprobe=query.nprobe
            )
            keep = ids[0] >= 0
            found, values = ids[0][keep], scores[0][keep]
            rescored = None
            if len(found) <= k or len(found) < fetch or fetch >= dense.ntotal:
                break
            if exact:
                rescored = dense.exact_scores(query.vector, found)
                if values[-1] + FAISS_ERROR < np.sort(rescored)[-k]:
                    break
            elif values[-1] < values[k - 1]:
                break
            fetch = min(2 * fetch, dense.ntotal)
        if exact:
            values = rescored if rescored is not None else dense.exact_scores(query.vector, found)
        order = np.lexsort((found, -values))[:k]
        return RankedList(found[order].tolist(), values[order].astype(np.float64).tolist())

    def warm_up(self) -> None:
        """FAISS runs nothing that a first search would compile or load."""

    @property
    def is_trained(self) -> bool:
        return self.dense.is_trained

    @property
    def training_size(self) -> int:
        return self.dense.training_size

    def train(self, vectors: np.ndarray) -> None:
        self.dense.train(vectors)

    def resize_due(self) -> bool:
        """The size tier moved (by this index's size), or, with a template (a shard of a
        sharded index, whose tier is the whole corpus's), the view is not built from it."""
        if self._template_factory is not None:
            return self.dense.factory != self._template_factory
        return self.dense.factory_due() is not None

    def rebuild_due(self) -> bool:
        dense = self.dense
        return dense.tombstones > max(1000, dense.ntotal // 5) or self.resize_due()

    def stats(self) -> dict[str, Any]:
        return {"vectors": self.dense.ntotal, "tombstones": self.dense.tombstones}
