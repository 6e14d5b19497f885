"""The search engine the CLI, the HTTP app and `eval/` all drive (no web framework here)."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lede.indexer.filters import Filters
from lede.indexer.models import ChunkRecord
from lede.indexer.ranked import RankedList
from lede.indexer.searchable import ChunkKey, RetrievalRequest, SearchableIndex
from lede.indexer.views.contract import vector_views, view_types
from lede.service.fusion import (
    NORMALIZATIONS,
    FusionMethod,
    Normalization,
    convex_combination,
    convex_weights,
    reciprocal_rank_fusion,
)
from lede.service.highlights import highlight_spans
from lede.service.models_optional import CrossEncoderReranker

HYBRID = "hybrid"
# A search mode: one registered view searched alone (by its name), or "hybrid", every view
# fused. Registering a view adds its mode, here, in the HTTP and MCP schemas and the CLI.
Mode = str
MODES: tuple[Mode, ...] = (*view_types(), HYBRID)
if TYPE_CHECKING:
    ModeName = str
else:  # the modes as a Literal, for request schemas (their OpenAPI enum)
    ModeName = Literal[MODES]
Group = Literal["chunk", "article"]
GROUPS: tuple[Group, ...] = ("chunk", "article")
Sort = Literal["relevance", "published_at"]
SORTS: tuple[Sort, ...] = ("relevance", "published_at")


def describe_modes() -> str:
    """The modes in words, for a tool's or an option's description."""
    alone = ", ".join(f"{name} ({kind.summary})" for name, kind in view_types().items())
    return f"{HYBRID} (default, best: every retriever fused) or one retriever alone: {alone}."


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Retrieval defaults (see docs/decisions.md for how they were chosen).

    Attributes:
        fusion: "convex" (normalized score combination, the default) or "rrf" (reciprocal
            rank fusion); chosen on SciFact's train split, see docs/decisions.md.
        normalization: how convex fusion scales each list: "max" (divide by the best score,
            the default) or "minmax".
        rrf_k: the RRF constant; larger flattens the rank curve.
        rrf_weights: RRF weight by view name (a view not named weighs 1).
        alpha: the share of the views searched by the query's vector (dense) in the convex
            combination; the other views share the rest.
        candidates: depth each retriever fetches before hybrid fusion.
        rerank_depth: fused hits re-scored by the cross-encoder, when one is configured.
        sort_window: how many of the most relevant matches `sort="published_at"` orders by
            date (the rest are not considered; with a reranker, the reranked hits), and how
            deep `offset + k` may page.
        facet_values: the most values per facet that a search with facets returns.
    """

    fusion: FusionMethod = "convex"
    normalization: Normalization = "max"
    rrf_k: float = 60.0
    rrf_weights: Mapping[str, float] = field(default_factory=dict)
    alpha: float = 0.75
    candidates: int = 100
    rerank_depth: int = 20
    sort_window: int = 1000
    facet_values: int = 20
    ef_search: int | None = None
    nprobe: int | None = None

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "convex"):
            raise ValueError(f"fusion must be 'rrf' or 'convex', got {self.fusion!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {', '.join(NORMALIZATIONS)}, "
                f"got {self.normalization!r}"
            )
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be within [0, 1], got {self.alpha}")
        if self.rrf_k <= 0:
            raise ValueError(f"rrf_k must be > 0, got {self.rrf_k}")
        if self.candidates < 1 or self.rerank_depth < 1:
            raise ValueError("candidates and rerank_depth must be >= 1")
        if any(weight < 0 for weight in self.rrf_weights.values()):
            raise ValueError("retriever weights must be >= 0")


@dataclass(frozen=True, slots=True)
class RetrieverScore:
    rank: int
    score: float


@dataclass(slots=True)
class Hit:
    """One ranked passage with its citation fields and each retriever's rank and score."""

    record: ChunkRecord
    score: float
    scores: dict[str, RetrieverScore | None] = field(default_factory=dict)
    highlights: list[tuple[int, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "article_id": record.article_id,
            "chunk_id": record.chunk_id,
            "title": record.title,
            "url": record.url,
            "published_at": record.published_at,
            "source": record.source,
            "author": record.author,
            "tags": list(record.tags),
            "text": record.text,
            "start": record.start,
            "end": record.end,
            "score": self.score,
            "scores": {
                name: None if value is None else {"rank": value.rank, "score": value.score}
                for name, value in self.scores.items()
            },
            "highlights": [{"start": s, "end": e} for s, e in self.highlights],
        }


@dataclass(slots=True)
class SearchResult:
    """One page of hits; `total` counts every match (chunks, or articles when grouped): the
    chunks holding a query term for bm25, every chunk the filters allow for dense and hybrid
    (those rank them all). `facets` (when asked for) counts the matching articles per source
    and per tag."""

    hits: list[Hit]
    took_ms: float
    total: int = 0
    facets: dict[str, list[dict[str, Any]]] | None = None
    missing_shards: list[str] = field(default_factory=list)  # allow_partial: left out

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "hits": [h.to_json() for h in self.hits],
            "total": self.total,
            "took_ms": round(self.took_ms, 3),
        }
        if self.facets is not None:
            data["facets"] = self.facets
        if self.missing_shards:
            data["partial"] = {"missing_shards": self.missing_shards}
        return data


class SearchEngine:
    """Ranked passages from any `SearchableIndex` in one of its modes: a view's name ("bm25",
    "dense") searches that view alone, "hybrid" fuses every view the index keeps."""

    def __init__(
        self,
        index: SearchableIndex,
        settings: EngineSettings | None = None,
        reranker: CrossEncoderReranker | None = None,
    ):
        self.index = index
        self.settings = settings or EngineSettings()
        self.reranker = reranker

    def warm_up(self) -> None:
        """Load the models now rather than on the first query."""
        self.index.warm_up()
        if self.reranker is not None:
            self.reranker.warm_up()

    def embed_query(self, query: str) -> np.ndarray:
        return self.index.encode_query(query)

    def views_for(self, mode: Mode) -> tuple[str, ...]:
        return self.index.view_names if mode == HYBRID else (mode,)

    def search(
        self,
        query: str,
        *,
        mode: Mode = "hybrid",
        k: int = 10,
        filters: Filters | None = None,
        group: Group = "chunk",
        highlight: bool = True,
        overrides: dict[str, Any] | None = None,
        query_vector: np.ndarray | None = None,
        offset: int = 0,
        sort: Sort = "relevance",
        facets: bool = False,
        allow_partial: bool = False,
    ) -> SearchResult:
        """Top-k passages (or articles, with `group="article"`) for `query`, after `offset`.

        Args:
            overrides: per-request `EngineSettings` fields (e.g. `{"fusion": "convex"}`).
            query_vector: the query's embedding when the caller already has it.
            offset: hits to skip (pages are stable: ties go to the lower row id).
            sort: "relevance", or "published_at" (newest first, undated last) over the
                `sort_window` most relevant matches.
            facets: also count matching articles per source and tag.
            allow_partial: on a sharded index, answer without the shards that are down
                (`missing_shards` names them) instead of raising `ShardUnavailableError`.

        Raises:
            ValueError: unknown mode, group or sort, k < 1, offset < 0, offset + k beyond
                `sort_window`, an empty query or bad overrides.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if group not in GROUPS:
            raise ValueError(f"group must be one of {', '.join(GROUPS)}; got {group!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not query.strip():
            raise ValueError("query must contain non-whitespace text")
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}; got {sort!r}")
        settings = dataclasses.replace(self.settings, **(overrides or {}))
        if offset < 0 or offset + k > settings.sort_window:
            raise ValueError(
                f"offset + k must be within [1, {settings.sort_window}]; got {offset} + {k}"
            )
        started = time.perf_counter()
        window = settings.sort_window if sort == "published_at" else offset + k
        wanted = window * 5 if group == "article" else window
        # Every page reads the retrievers to the same depth, so pages agree on tied scores.
        depth = max(wanted, settings.candidates)
        if self.reranker is not None:
            depth = max(depth, settings.rerank_depth)
        views = self.views_for(mode)
        retrieval = self.index.retrieve(
            RetrievalRequest(
                query,
                views,
                depth,
                filters=filters,
                query_vector=query_vector if vector_views().intersection(views) else None,
                ef_search=settings.ef_search,
                nprobe=settings.nprobe,
                count="articles" if group == "article" else "chunks",
                facets=settings.facet_values if facets else 0,
                keys=group == "article" or sort == "published_at",
                allow_partial=allow_partial,
            )
        )
        lists, keys = retrieval.lists, retrieval.keys
        fused = _fuse(lists, mode, settings)
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
        if group == "article" and self.reranker is None:
            ranked = _best_per_article(ranked, keys)
        if self.reranker is not None:  # the cross-encoder reads what it must, no more
            ranked = ranked[: max(settings.rerank_depth, offset + k)]
        else:
            if sort == "published_at":
                ranked = ranked[:window]
                ranked = [ranked[i] for i in _newest_first([doc for doc, _ in ranked], keys)]
            ranked = ranked[offset : offset + k]
        # Only the hits that will be returned are read from SQLite.
        records = self.index.records([doc for doc, _ in ranked])
        ranked = [(doc, score) for doc, score in ranked if doc in records]  # deleted meanwhile
        positions = _positions(lists, [doc for doc, _ in ranked], self.index.view_names)
        hits = [
            Hit(records[doc], float(score), where)
            for (doc, score), where in zip(ranked, positions, strict=True)
        ]
        if self.reranker is not None:
            hits = self._rerank(query, hits)
            if group == "article":
                hits = _best_hit_per_article(hits)
            if sort == "published_at":
                hits = [hits[i] for i in _newest_first([h.record.rowid for h in hits], keys)]
            hits = hits[offset : offset + k]
        if highlight:
            self._highlight(query, hits)
        took_ms = (time.perf_counter() - started) * 1000
        return SearchResult(
            hits, took_ms, retrieval.total or 0, retrieval.facets, retrieval.missing
        )

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        assert self.reranker is not None
        scores = self.reranker.score(query, [h.record.text for h in hits])
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        reranked = []
        for rank, position in enumerate(order, start=1):
            hit = hits[position]
            hit.scores["rerank"] = RetrieverScore(rank, scores[position])
            hit.score = scores[position]
            reranked.append(hit)
        return reranked

    def _highlight(self, query: str, hits: list[Hit]) -> None:
        analyze = self.index.analyze
        terms = set(analyze(query))
        for hit in hits:
            record = hit.record
            hit.highlights = highlight_spans(
                record.text, record.start, terms, analyze, record.sentences()
            )


def _fuse(lists: dict[str, RankedList], mode: Mode, settings: EngineSettings) -> dict[int, float]:
    if mode != HYBRID:
        ranked = lists[mode]
        return dict(zip(ranked.ids, ranked.scores, strict=True))
    if settings.fusion == "convex":
        weights = convex_weights(list(lists), settings.alpha, vector_views())
        return convex_combination(lists, weights=weights, normalization=settings.normalization)
    return reciprocal_rank_fusion(lists, k=settings.rrf_k, weights=settings.rrf_weights)


def _best_per_article(
    ranked: list[tuple[int, float]], keys: dict[int, ChunkKey]
) -> list[tuple[int, float]]:
    """Keep each article's best chunk (by the article keys the retrieval returned)."""
    seen: set[int] = set()
    best = []
    for doc, score in ranked:
        code = keys[doc].article
        if code not in seen:
            seen.add(code)
            best.append((doc, score))
    return best


def _newest_first(rowids: list[int], keys: dict[int, ChunkKey]) -> list[int]:
    """Positions of these chunks (in relevance order) newest first, undated last, ties in
    relevance order."""
    dates = [keys[rowid].published for rowid in rowids]
    undated = [math.isnan(date) for date in dates]
    return sorted(range(len(rowids)), key=lambda i: (undated[i], 0.0 if undated[i] else -dates[i]))


def _positions(
    lists: dict[str, RankedList], docs: list[int], names: Sequence[str]
) -> list[dict[str, RetrieverScore | None]]:
    """Each doc's rank and score in each of the index's views (None where not returned)."""
    wanted = set(docs)
    found: dict[str, dict[int, RetrieverScore]] = {}
    for name, ranked in lists.items():
        found[name] = {
            doc: RetrieverScore(rank, float(score))
            for rank, (doc, score) in enumerate(zip(ranked.ids, ranked.scores, strict=True), 1)
            if doc in wanted
        }
    return [{name: found.get(name, {}).get(doc) for name in names} for doc in docs]


def _best_hit_per_article(hits: list[Hit]) -> list[Hit]:
    seen: set[str] = set()
    best = []
    for hit in hits:
        if hit.record.article_id not in seen:
            seen.add(hit.record.article_id)
            best.append(hit)
    return best
