"""The view contract: one retriever's derived index of the chunks that SQLite holds.

A view is built from the rows a write commits (row ids with their lexical text and their
embedding), deletes by row id, answers a query with one `RankedList` restricted to an
allowed-id mask, and saves itself to bytes that the index checkpoints as `NAME-SEQ.SUFFIX`.
`LedeIndex` holds its views by name (`view_types()`); adding a retriever is one module that
implements `View` plus its line in `view_types()` (see `views/bm25.py` and `views/dense.py`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, cast, runtime_checkable

import numpy as np

from lede.indexer.ranked import RankedList

if TYPE_CHECKING:
    from lede.indexer.manifest import Manifest
    from lede.indexer.text_analysis import Analyzer

Input = Literal["text", "vector"]


@dataclass(frozen=True, slots=True)
class ChunkRows:
    """Chunks to add to a view: ids, and the inputs the view asked for (`View.inputs`)."""

    ids: np.ndarray  # int64 chunk row ids
    texts: Sequence[str] | None = None  # what BM25 indexes (title line + text, per settings)
    vectors: np.ndarray | None = None  # (len(ids), dimension) float32 embeddings


@dataclass(frozen=True, slots=True)
class CorpusStatistics:
    """What a lexical view's scores depend on beyond each document: the document count, the
    documents' total length, and how many documents hold each of the query's terms.

    One index uses its own; an index split into shards sums every shard's (`merge`) and hands
    the sum to each shard, so each scores as one index of the whole corpus would (the
    problem Elasticsearch's `dfs_query_then_fetch` solves).
    """

    documents: int
    total_length: float
    term_documents: Mapping[str, int]

    @staticmethod
    def merge(parts: Sequence[CorpusStatistics]) -> CorpusStatistics:
        """The statistics of the union of disjoint document sets."""
        terms: dict[str, int] = {}
        for part in parts:
            for term, count in part.term_documents.items():
                terms[term] = terms.get(term, 0) + count
        return CorpusStatistics(
            sum(part.documents for part in parts),
            math.fsum(part.total_length for part in parts),
            terms,
        )


@dataclass(frozen=True, slots=True)
class ViewQuery:
    """A query as every view sees it: the text, its embedding where one is needed, the
    approximate search's per-request knobs (views that have none ignore them), and corpus
    statistics to score with instead of the view's own (see `CorpusStatistics`)."""

    text: str
    vector: np.ndarray | None = None  # (1, dimension)
    ef_search: int | None = None
    nprobe: int | None = None
    statistics: CorpusStatistics | None = None


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """What a view needs from the index to be created or loaded. `templates`: by view name,
    the trained, empty state a view starts from instead of training its own (what a sharded
    index shares among its shards: the dense view's IVF quantizer, decision 45)."""

    manifest: Manifest
    analyzer: Analyzer
    templates: Mapping[str, bytes] = field(default_factory=dict)


class View(Protocol):
    """One retriever's view over the chunks; see the module docstring. What a view does beyond
    this core it says by implementing a capability: `Matching`, `Trainable`, `Resizable`."""

    name: ClassVar[str]  # the retriever's name in results ("bm25"), and the checkpoint prefix
    suffix: ClassVar[str]  # checkpoint file extension
    inputs: ClassVar[frozenset[Input]]  # what `add` reads from `ChunkRows`
    query_input: ClassVar[Input]  # what `search` reads from `ViewQuery`
    summary: ClassVar[str]  # what searching it alone finds, for a mode's description

    @classmethod
    def create(cls, spec: ViewSpec, expected_size: int = 0) -> View: ...

    @classmethod
    def from_bytes(cls, data: bytes, spec: ViewSpec) -> View: ...

    def to_bytes(self) -> bytes: ...

    def add(self, rows: ChunkRows) -> None:
        """Index these chunks; ids already present are skipped (replay is idempotent)."""

    def delete(self, ids: np.ndarray) -> None:
        """Remove these row ids; unknown ids are ignored."""

    def __contains__(self, chunk_id: int) -> bool: ...

    def live_ids(self) -> np.ndarray:
        """Sorted ids of the chunks the view holds."""

    def search(self, query: ViewQuery, k: int, allowed: np.ndarray | None) -> RankedList:
        """The top k allowed chunks for the query (`allowed`: a boolean mask over ids). A view
        that is not `Matching` gives every allowed chunk a score."""

    def warm_up(self) -> None:
        """Prepare what the first search runs (compile or load it) before a query waits."""

    def stats(self) -> dict[str, Any]:
        """Counts for `lede info`, keyed without the view's name."""


@runtime_checkable
class Matching(Protocol):
    """A view that ranks only the chunks a query matches (BM25), scored with statistics of the
    corpus that a sharded index sums over its shards."""

    def matching(self, query: ViewQuery) -> np.ndarray:
        """A boolean mask of the chunks the query matches."""

    def statistics(self, query: ViewQuery) -> CorpusStatistics:
        """The corpus statistics this view's scores for the query depend on."""

    def cost(self, query: ViewQuery) -> int:
        """About how much work a search for the query is (postings walked)."""


@runtime_checkable
class Trainable(Protocol):
    """A view that must be trained on a sample of vectors before its first add (IVF)."""

    @property
    def is_trained(self) -> bool: ...

    @property
    def training_size(self) -> int:
        """Vectors it must be trained on before the first add (when not `is_trained`)."""

    def train(self, vectors: np.ndarray) -> None: ...


@runtime_checkable
class Resizable(Protocol):
    """A view whose form depends on the index's size or decays with deletes: a checkpoint
    rebuilds it from SQLite when it says so."""

    def resize_due(self) -> bool:
        """Whether the view should be rebuilt in another form for the index's size now."""

    def rebuild_due(self) -> bool:
        """Whether a checkpoint should rebuild it from SQLite (size, or too many tombstones)."""


def as_matching(view: View) -> Matching | None:
    """`view` as `Matching` when it is one, else None. Decided once per view type: an
    `isinstance` against a protocol costs 7-14 us, and queries ask on every search."""
    return cast(Matching, view) if _matches(type(view)) else None


@functools.cache
def _matches(kind: type) -> bool:
    return issubclass(kind, Matching)


def ranks_all(view: View) -> bool:
    """Whether every allowed chunk gets a score from `view` (it is not `Matching`)."""
    return not _matches(type(view))


def view_types() -> dict[str, type[View]]:
    """The registered views, by name, in the order hybrid retrieval lists them. Search modes,
    their schemas and fusion weights follow from this (`lede.service.engine.MODES`)."""
    from lede.indexer.views.bm25 import BM25View
    from lede.indexer.views.dense import DenseView

    return {BM25View.name: BM25View, DenseView.name: DenseView}


@functools.cache
def vector_views() -> frozenset[str]:
    """The registered views that search by the query's embedding (convex fusion gives them
    `alpha`)."""
    return frozenset(name for name, kind in view_types().items() if kind.query_input == "vector")
