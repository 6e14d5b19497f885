"""The searchable-index contract: everything the search engine needs from an index.

The engine, answers, the HTTP app, the CLI, MCP, Slack and the evaluation read an index only
through `SearchableIndex`. `LedeIndex` (one directory on this machine) is its first
implementation; an index spread over machines is another, and both pass the same contract
tests (tests/contracts/). Filters travel as the `Filters` value, so an index applies them
where its data lives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from lede.indexer.filters import Filters
from lede.indexer.models import Article, ChunkRecord
from lede.indexer.ranked import RankedList
from lede.indexer.views.contract import CorpusStatistics

if TYPE_CHECKING:
    from lede.indexer.encoders.embedder import Embedder
    from lede.indexer.ingest import WriteReport

Count = Literal["none", "chunks", "articles"]


@dataclass(frozen=True, slots=True)
class RetrievalRequest:
    """One query for every view it names.

    Attributes:
        views: the views to search, in order (their names, e.g. ("bm25", "dense")).
        depth: how many chunks each view returns at most.
        query_vector: the query's embedding when the caller has it; else the index encodes
            the query when a named view needs it.
        count: also count what the query matches: chunks, articles, or nothing.
        facets: also count the matching articles per source and tag (this many values each).
        keys: also return each listed chunk's article key and publication time.
        statistics: corpus statistics per view to score with instead of the index's own
            (what a sharded index passes each shard; see `views.CorpusStatistics`).
        allow_partial: a sharded index may answer without shards that are down, naming them
            in `Retrieval.missing`; else it raises `ShardUnavailableError`.
    """

    query: str
    views: tuple[str, ...]
    depth: int
    filters: Filters | None = None
    query_vector: np.ndarray | None = None
    ef_search: int | None = None
    nprobe: int | None = None
    count: Count = "none"
    facets: int = 0
    keys: bool = False
    statistics: Mapping[str, CorpusStatistics] | None = None
    allow_partial: bool = False


@dataclass(frozen=True, slots=True)
class ChunkKey:
    """What grouping and date order need of a chunk: an article key (equal for chunks of
    the same article) and its publication time (POSIX seconds; NaN when undated)."""

    article: int
    published: float


@dataclass(slots=True)
class Retrieval:
    """Every view's ranked list from one consistent snapshot of the index, and what the
    request asked to be counted there."""

    lists: dict[str, RankedList]
    total: int | None = None
    facets: dict[str, list[dict[str, Any]]] | None = None
    keys: dict[int, ChunkKey] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # shards left out (allow_partial)


class SearchableIndex(Protocol):
    """What an index offers the engine; see the module docstring."""

    @property
    def view_names(self) -> tuple[str, ...]:
        """Every view the index keeps, in the order hybrid retrieval fuses them."""

    def retrieve(self, request: RetrievalRequest) -> Retrieval:
        """Search the named views in one snapshot that includes every committed write."""

    def records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        """The stored chunks with these ids (ids deleted meanwhile are absent)."""

    def encode_query(self, query: str) -> np.ndarray:
        """The query's embedding, shape (1, dimension), from the index's own model."""

    @property
    def embedder(self) -> Embedder:
        """The index's embedding model (the answer model reuses it when it is its base)."""

    def article(self, article_id: str) -> tuple[Article, list[ChunkRecord]] | None:
        """A stored article with its chunks, or None."""

    def facet_values(self) -> dict[str, list[str]]:
        """The sources and tags present in the index (values to filter by)."""

    def analyze(self, text: str) -> list[str]:
        """The index's lexical terms of a text (for highlighting the query's terms)."""

    def warm_up(self) -> None:
        """Load models and compile kernels now rather than on the first query."""

    def stats(self) -> dict[str, Any]:
        """Counts of articles, chunks and views, and the index's settings."""


class WritableIndex(SearchableIndex, Protocol):
    """A searchable index that also takes writes (what `lede serve` and `lede index` hold)."""

    def add(self, articles: Iterable[Article], *, lock_timeout: float = 60.0) -> WriteReport:
        """Add new articles, update changed ones, skip unchanged ones; acknowledged once
        committed."""

    def delete(self, article_ids: Sequence[str], *, lock_timeout: float = 60.0) -> list[str]:
        """Delete these articles; returns the ids that were there."""

    def checkpoint_if_due(self, lock_timeout: float = 60.0) -> None:
        """Write the views' files now when enough has changed since they were written."""

    def close(self) -> None: ...
