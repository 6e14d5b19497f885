"""The "bm25" view: Lede's compiled BM25 index (`views/lexical.py`) behind the view contract."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from lede.indexer.ranked import RankedList
from lede.indexer.views.contract import ChunkRows, CorpusStatistics, Input, ViewQuery, ViewSpec
from lede.indexer.views.lexical import LexicalIndex


class BM25View:
    """BM25 over each chunk's lexical text; corpus statistics stay exact through deletes."""

    name: ClassVar[str] = "bm25"
    suffix: ClassVar[str] = "npz"
    inputs: ClassVar[frozenset[Input]] = frozenset({"text"})
    query_input: ClassVar[Input] = "text"
    summary: ClassVar[str] = "exact words"

    def __init__(self, lexical: LexicalIndex):
        self.lexical = lexical

    @classmethod
    def create(cls, spec: ViewSpec, expected_size: int = 0) -> BM25View:
        return cls(LexicalIndex(spec.analyzer, spec.manifest.settings.bm25))

    @classmethod
    def from_bytes(cls, data: bytes, spec: ViewSpec) -> BM25View:
        return cls(LexicalIndex.from_bytes(data, spec.analyzer, spec.manifest.settings.bm25))

    def to_bytes(self) -> bytes:
        return self.lexical.to_bytes()

    def add(self, rows: ChunkRows) -> None:
        assert rows.texts is not None, "the bm25 view indexes texts"
        for chunk_id, text in zip(rows.ids.tolist(), rows.texts, strict=True):
            self.lexical.add(chunk_id, text)

    def delete(self, ids: np.ndarray) -> None:
        for chunk_id in np.asarray(ids, dtype=np.int64).tolist():
            self.lexical.delete(chunk_id)

    def __contains__(self, chunk_id: int) -> bool:
        return chunk_id in self.lexical

    def live_ids(self) -> np.ndarray:
        return np.array(self.lexical.doc_ids, dtype=np.int64)

    def search(self, query: ViewQuery, k: int, allowed: np.ndarray | None) -> RankedList:
        """Cut off (`truncated`) when it filled k; otherwise every match is in the list."""
        ids, scores, matched = self.lexical.search_counted(query.text, k, allowed, query.statistics)
        return RankedList(
            ids.tolist(), scores.astype(np.float64).tolist(), len(ids) >= k, matched=matched
        )

    def statistics(self, query: ViewQuery) -> CorpusStatistics:
        return self.lexical.statistics(query.text)

    def matching(self, query: ViewQuery) -> np.ndarray:
        return self.lexical.matching(query.text)

    def warm_up(self) -> None:
        self.lexical.warm_up()

    def cost(self, query: ViewQuery) -> int:
        """Postings a search walks: how much work the query is (decision 26)."""
        return self.lexical.postings_count(query.text)

    def stats(self) -> dict[str, Any]:
        return {"documents": self.lexical.doc_count, "terms": len(self.lexical.vocabulary)}
