"""The search engine the CLI, the HTTP app and `eval/` all drive (no web framework here)."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lede.indexer import bm25_kernels
from lede.indexer.filters import Filters
from lede.indexer.index import LedeIndex
from lede.indexer.lexical import LexicalIndex
from lede.indexer.store import ChunkRecord
from lede.service.fusion import (
    NORMALIZATIONS,
    FusionMethod,
    Normalization,
    RankedList,
    convex_combination,
    reciprocal_rank_fusion,
)
from lede.service.highlights import highlight_spans
from lede.service.models_optional import CrossEncoderReranker

Mode = Literal["bm25", "dense", "hybrid"]
Group = Literal["chunk", "article"]
MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid")
GROUPS: tuple[Group, ...] = ("chunk", "article")
Sort = Literal["relevance", "published_at"]
SORTS: tuple[Sort, ...] = ("relevance", "published_at")


# A hybrid query with much BM25 work encodes here while the calling thread runs BM25; with
# little, the hand-over costs more than it hides (decision 26). Threads start on first use;
# more than one so that concurrent requests do not queue behind each other.
QUERY_ENCODING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lede-query-encode")
OVERLAP_MIN_POSTINGS = 50_000


def encode_beside_bm25(lexical: LexicalIndex, query: str) -> bool:
    """Whether BM25 has enough postings to walk for the query's encoding to overlap it."""
    return lexical.postings_count(query) >= OVERLAP_MIN_POSTINGS


def bm25_list(ids: np.ndarray, scores: np.ndarray, depth: int) -> RankedList:
    """BM25's hits as a ranked list: cut off when it filled `depth`, else every match is in it."""
    return RankedList(ids.tolist(), scores.astype(np.float64).tolist(), truncated=len(ids) >= depth)


def dense_list(ids: np.ndarray, scores: np.ndarray) -> RankedList:
    """One query's FAISS row as a ranked list (empty slots, id -1, dropped).

    Always treated as cut off: a short list from IVF or HNSW (few vectors in the probed cells
    after filtering) does not mean the rest scored 0.
    """
    keep = ids >= 0
    return RankedList(ids[keep].tolist(), scores[keep].astype(np.float64).tolist())


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Retrieval defaults (see docs/decisions.md for how they were chosen).

    Attributes:
        fusion: "convex" (normalized score combination, the default) or "rrf" (reciprocal
            rank fusion); chosen on SciFact's train split, see docs/decisions.md.
        normalization: how convex fusion scales each list: "max" (divide by the best score,
            the default) or "minmax".
        rrf_k: the RRF constant; larger flattens the rank curve.
        bm25_weight, dense_weight: per-retriever RRF weights.
        alpha: dense share of the convex combination.
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
    bm25_weight: float = 1.0
    dense_weight: float = 1.0
    alpha: float = 0.75
    candidates: int = 100
    rerank_depth: int = 20
    sort_window: int = 1000
    facet_values: int = 20
    ef_search: int | None = None
    nprobe: int | None = None
    faiss_threads: int = 1

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
        if self.bm25_weight < 0 or self.dense_weight < 0:
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

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "hits": [h.to_json() for h in self.hits],
            "total": self.total,
            "took_ms": round(self.took_ms, 3),
        }
        if self.facets is not None:
            data["facets"] = self.facets
        return data


class SearchEngine:
    """Ranked passages from an open `LedeIndex` in one of three modes."""

    def __init__(
        self,
        index: LedeIndex,
        settings: EngineSettings | None = None,
        reranker: CrossEncoderReranker | None = None,
    ):
        self.index = index
        self.settings = settings or EngineSettings()
        self.reranker = reranker

    def warm_up(self) -> None:
        """Load the models now rather than on the first query.

        FAISS runs single-threaded by default: one query at a time is faster that way on a
        few cores (its OpenMP pool otherwise contends with torch's), and concurrent requests
        already use the cores (see docs/decisions.md).
        """
        import faiss

        faiss.omp_set_num_threads(self.settings.faiss_threads)
        self.index.embedder.embed(["warm up"])
        bm25_kernels.warm_up()
        if self.reranker is not None:
            self.reranker.warm_up()

    def embed_query(self, query: str) -> np.ndarray:
        vectors: np.ndarray = self.index.embedder.embed([query])
        return vectors

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
    ) -> SearchResult:
        """Top-k passages (or articles, with `group="article"`) for `query`, after `offset`.

        Args:
            overrides: per-request `EngineSettings` fields (e.g. `{"fusion": "convex"}`).
            query_vector: the query's embedding when the caller already has it.
            offset: hits to skip (pages are stable: ties go to the lower chunk id).
            sort: "relevance", or "published_at" (newest first, undated last) over the
                `sort_window` most relevant matches.
            facets: also count matching articles per source and tag.

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
        self.index.refresh()
        window = settings.sort_window if sort == "published_at" else offset + k
        wanted = window * 5 if group == "article" else window
        # Every page reads the retrievers to the same depth, so pages agree on tied scores.
        depth = max(wanted, settings.candidates)
        if self.reranker is not None:
            depth = max(depth, settings.rerank_depth)
        encoding: Future[np.ndarray] | None = None
        if (
            mode == "hybrid"
            and query_vector is None
            and encode_beside_bm25(self.index.lexical, query)
        ):
            encoding = QUERY_ENCODING.submit(self.embed_query, query)
        elif mode != "bm25" and query_vector is None:
            query_vector = self.embed_query(query)
        lists: dict[str, RankedList] = {}
        with self.index.reading():
            mask = self.index.filter_mask(filters)
            bm25_matches = 0
            if mode in ("bm25", "hybrid"):
                ids, scores, bm25_matches = self.index.lexical.search_counted(query, depth, mask)
                lists["bm25"] = bm25_list(ids, scores, depth)
            if mode in ("dense", "hybrid"):
                if encoding is not None:
                    query_vector = encoding.result()
                assert query_vector is not None
                ids2d, scores2d = self.index.dense.search(
                    query_vector, depth, mask, ef_search=settings.ef_search, nprobe=settings.nprobe
                )
                lists["dense"] = dense_list(ids2d[0], scores2d[0])
            fused = _fuse(lists, mode, settings)
            ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
            if group == "article" and self.reranker is None:
                ranked = self._best_per_article(ranked)
            if mode == "bm25" and group == "chunk" and not facets:
                total = bm25_matches  # counted by BM25's own pass over the postings
            else:
                matching = self._matching(query, mode, mask)
                total = (
                    self.index.catalog.article_count(matching)
                    if group == "article"
                    else int(np.count_nonzero(matching))
                )
            facet_counts = (
                self.index.catalog.facet_counts(matching, settings.facet_values) if facets else None
            )
        if self.reranker is not None:  # the cross-encoder reads what it must, no more
            ranked = ranked[: max(settings.rerank_depth, offset + k)]
        else:
            if sort == "published_at":
                ranked = ranked[:window]
                ranked = [ranked[i] for i in self._newest_first([doc for doc, _ in ranked])]
            ranked = ranked[offset : offset + k]
        # Only the hits that will be returned are read from SQLite.
        records = self.index.store.chunk_records([doc for doc, _ in ranked])
        ranked = [(doc, score) for doc, score in ranked if doc in records]  # deleted meanwhile
        positions = _positions(lists, [doc for doc, _ in ranked])
        hits = [
            Hit(records[doc], float(score), where)
            for (doc, score), where in zip(ranked, positions, strict=True)
        ]
        if self.reranker is not None:
            hits = self._rerank(query, hits)
            if group == "article":
                hits = _best_hit_per_article(hits)
            if sort == "published_at":
                hits = [hits[i] for i in self._newest_first([h.record.rowid for h in hits])]
            hits = hits[offset : offset + k]
        if highlight:
            self._highlight(query, hits)
        took_ms = (time.perf_counter() - started) * 1000
        return SearchResult(hits, took_ms, total, facet_counts)

    def _matching(self, query: str, mode: Mode, mask: np.ndarray | None) -> np.ndarray:
        """The chunks a query matches: with a query term (bm25), or every allowed one (a
        read-only view; nothing here is written)."""
        allowed = self.index.catalog.allowed(mask)
        if mode != "bm25":
            return allowed
        found = self.index.lexical.matching(query)
        size = min(len(found), len(allowed))
        matching: np.ndarray = found[:size] & allowed[:size]
        return matching

    def _newest_first(self, rowids: list[int]) -> list[int]:
        """Positions of these chunks (in relevance order) newest first, undated last, ties in
        relevance order; dates come from the in-memory catalog."""
        dates = self.index.catalog.published(rowids)
        undated = np.isnan(dates)
        return sorted(
            range(len(rowids)), key=lambda i: (bool(undated[i]), 0.0 if undated[i] else -dates[i])
        )

    def _best_per_article(self, ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Keep each article's best chunk, using the in-memory catalog (no database read)."""
        codes = self.index.catalog.article_codes([doc for doc, _ in ranked])
        seen: set[int] = set()
        best = []
        for (doc, score), code in zip(ranked, codes.tolist(), strict=True):
            if code not in seen:
                seen.add(code)
                best.append((doc, score))
        return best

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
        analyze = self.index.analyzer
        terms = set(analyze(query))
        for hit in hits:
            hit.highlights = highlight_spans(hit.record.text, hit.record.start, terms, analyze)


def _fuse(lists: dict[str, RankedList], mode: Mode, settings: EngineSettings) -> dict[int, float]:
    if mode != "hybrid":
        ranked = lists[mode]
        return dict(zip(ranked.ids, ranked.scores, strict=True))
    if settings.fusion == "convex":
        return convex_combination(lists, alpha=settings.alpha, normalization=settings.normalization)
    weights = {"bm25": settings.bm25_weight, "dense": settings.dense_weight}
    return reciprocal_rank_fusion(lists, k=settings.rrf_k, weights=weights)


def _positions(
    lists: dict[str, RankedList], docs: list[int]
) -> list[dict[str, RetrieverScore | None]]:
    """Each doc's rank and score in each retriever (None where it was not returned)."""
    wanted = set(docs)
    found: dict[str, dict[int, RetrieverScore]] = {}
    for name, ranked in lists.items():
        found[name] = {
            doc: RetrieverScore(rank, float(score))
            for rank, (doc, score) in enumerate(zip(ranked.ids, ranked.scores, strict=True), 1)
            if doc in wanted
        }
    return [{name: found.get(name, {}).get(doc) for name in ("bm25", "dense")} for doc in docs]


def _best_hit_per_article(hits: list[Hit]) -> list[Hit]:
    seen: set[str] = set()
    best = []
    for hit in hits:
        if hit.record.article_id not in seen:
            seen.add(hit.record.article_id)
            best.append(hit)
    return best
