"""The search engine the CLI, the HTTP app and `eval/` all drive (no web framework here)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from indexer.filters import Filters
from indexer.index import LedeIndex
from indexer.store import ChunkRecord
from service.fusion import (
    FusionMethod,
    RankedList,
    convex_combination,
    reciprocal_rank_fusion,
)

Mode = Literal["bm25", "dense", "hybrid"]
MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Retrieval defaults (see docs/decisions.md for how they were chosen)."""

    fusion: FusionMethod = "rrf"
    rrf_k: float = 60.0
    bm25_weight: float = 1.0
    dense_weight: float = 1.0
    alpha: float = 0.5
    candidates: int = 100
    ef_search: int | None = None
    nprobe: int | None = None

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "convex"):
            raise ValueError(f"fusion must be 'rrf' or 'convex', got {self.fusion!r}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be within [0, 1], got {self.alpha}")
        if self.rrf_k <= 0:
            raise ValueError(f"rrf_k must be > 0, got {self.rrf_k}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")


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
        }


@dataclass(slots=True)
class SearchResult:
    hits: list[Hit]
    took_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"hits": [h.to_json() for h in self.hits], "took_ms": round(self.took_ms, 3)}


class SearchEngine:
    """Ranked passages from an open `LedeIndex` in one of three modes."""

    def __init__(self, index: LedeIndex, settings: EngineSettings | None = None):
        self.index = index
        self.settings = settings or EngineSettings()

    def warm_up(self) -> None:
        """Load the embedding model now rather than on the first dense query."""
        self.index.embedder.embed(["warm up"])

    def search(
        self,
        query: str,
        *,
        mode: Mode = "hybrid",
        k: int = 10,
        filters: Filters | None = None,
    ) -> SearchResult:
        """Top-k passages for `query`.

        Raises:
            ValueError: unknown mode, k < 1 or an empty query.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not query.strip():
            raise ValueError("query must contain non-whitespace text")
        started = time.perf_counter()
        self.index.refresh()
        depth = k if mode != "hybrid" else max(k, self.settings.candidates)
        query_vector = self.index.embedder.embed([query]) if mode != "bm25" else None
        lists: dict[str, RankedList] = {}
        with self.index.reading():
            mask = self.index.filter_mask(filters)
            if mode in ("bm25", "hybrid"):
                ids, scores = self.index.lexical.search(query, depth, mask)
                lists["bm25"] = RankedList(ids.tolist(), scores.tolist())
            if query_vector is not None:
                ids2d, scores2d = self.index.dense.search(
                    query_vector,
                    depth,
                    mask,
                    ef_search=self.settings.ef_search,
                    nprobe=self.settings.nprobe,
                )
                keep = ids2d[0] >= 0
                lists["dense"] = RankedList(
                    ids2d[0][keep].tolist(), scores2d[0][keep].astype(np.float64).tolist()
                )
        fused = self._fuse(lists, mode)
        top = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        records = self.index.store.chunk_records([doc for doc, _ in top])
        positions = {
            name: {
                doc: RetrieverScore(rank, float(score))
                for rank, (doc, score) in enumerate(
                    zip(ranked.ids, ranked.scores, strict=True), start=1
                )
            }
            for name, ranked in lists.items()
        }
        hits = [
            Hit(
                records[doc],
                float(score),
                {name: positions.get(name, {}).get(doc) for name in ("bm25", "dense")},
            )
            for doc, score in top
            if doc in records  # a chunk deleted since the views were read is dropped
        ]
        return SearchResult(hits, (time.perf_counter() - started) * 1000)

    def _fuse(self, lists: dict[str, RankedList], mode: Mode) -> dict[int, float]:
        if mode != "hybrid":
            ranked = lists[mode]
            return dict(zip(ranked.ids, ranked.scores, strict=True))
        settings = self.settings
        if settings.fusion == "convex":
            return convex_combination(lists, alpha=settings.alpha)
        weights = {"bm25": settings.bm25_weight, "dense": settings.dense_weight}
        return reciprocal_rank_fusion(lists, k=settings.rrf_k, weights=weights)
