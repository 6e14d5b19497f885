"""The BM25 view: an in-memory inverted index with incremental adds and deletes.

Scoring is Lucene's BM25: idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and
tf part = tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)), summed over query terms
(repeated query terms count again, as in rank-bm25). N, df and avgdl always describe the live
documents exactly: a delete subtracts the document's terms at once, while its postings stay as
tombstones (skipped by the live mask) until the next checkpoint writes compacted postings.
A query costs time in proportion to the postings of its terms (`indexer.bm25_topk`: numpy over
a small index, compiled loops over a large one).
"""

from __future__ import annotations

import copy
import io
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np

from lede.indexer.arrays import grown
from lede.indexer.filters import fit_mask
from lede.indexer.text_analysis import Analyzer
from lede.indexer.views import bm25_topk
from lede.indexer.views.contract import CorpusStatistics


@dataclass(frozen=True, slots=True)
class BM25Settings:
    k1: float = 1.2
    # No length normalization by default: chosen with fusion on SciFact and WikiQA train
    # (python -m lede.eval.tune, decision 27). Chunks are already at most 128 tokens long.
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.k1 < 0:
            raise ValueError(f"bm25 k1 must be >= 0, got {self.k1}")
        if not 0 <= self.b <= 1:
            raise ValueError(f"bm25 b must be within [0, 1], got {self.b}")


# Postings are stored compactly: 6 bytes each (the 1M-chunk scale corpus's 74M postings take
# 445 MB, against 890 MB as int64 ids and float32 counts), which also halves what a query
# copies (decision 30).
DOC_ID_DTYPE = np.int32
TF_DTYPE = np.uint16
MAX_DOC_ID = int(np.iinfo(DOC_ID_DTYPE).max)
MAX_TF = int(np.iinfo(TF_DTYPE).max)  # a term repeated more often in one document counts this


def _idf(documents: int, df: float) -> float:
    """Lucene's BM25 idf of a term that `df` of `documents` documents hold."""
    frequency = float(df)
    return float(np.log1p((documents - frequency + 0.5) / (frequency + 0.5)))


class _Postings:
    """Growable (doc id, term frequency) arrays of one term."""

    __slots__ = ("docs", "size", "tfs")

    def __init__(self, docs: np.ndarray, tfs: np.ndarray):
        self.docs = docs
        self.tfs = tfs
        self.size = len(docs)

    def append(self, doc: int, tf: int) -> None:
        if self.size == len(self.docs):
            self.docs = grown(self.docs, self.size + 1)
            self.tfs = grown(self.tfs, self.size + 1)
        self.docs[self.size] = doc
        self.tfs[self.size] = tf
        self.size += 1


class LexicalIndex:
    """BM25 over documents identified by non-negative integer ids (chunk row ids)."""

    def __init__(self, analyzer: Analyzer, settings: BM25Settings | None = None):
        self.analyzer = analyzer
        self.settings = settings or BM25Settings()
        self.vocabulary: dict[str, int] = {}
        self._postings: list[_Postings] = []
        self._df = np.zeros(0, dtype=np.int64)
        self._doc_len = np.zeros(0, dtype=np.float32)
        self._live = np.zeros(0, dtype=bool)
        self._doc_terms: dict[int, np.ndarray] = {}
        # Deleted ids whose postings are still stored (a load from to_bytes drops them).
        self._tombstones: set[int] = set()
        self.doc_count = 0
        self._total_len = 0.0

    # --- updates -------------------------------------------------------------------------

    def __contains__(self, doc_id: int) -> bool:
        return doc_id in self._doc_terms

    @property
    def doc_ids(self) -> list[int]:
        return sorted(self._doc_terms)

    def add(self, doc_id: int, text: str) -> None:
        """Index a document; adding an id that is already present does nothing."""
        if not 0 <= doc_id <= MAX_DOC_ID:
            raise ValueError(f"document ids must be within [0, {MAX_DOC_ID}], got {doc_id}")
        if doc_id in self._doc_terms:
            return
        if doc_id in self._tombstones:
            raise ValueError(f"document id {doc_id} was deleted; ids cannot be reused")
        counts = Counter(self.analyzer(text))
        term_ids = np.empty(len(counts), dtype=np.int64)
        for position, (term, tf) in enumerate(counts.items()):
            term_id = self.vocabulary.get(term)
            if term_id is None:
                term_id = len(self._postings)
                self.vocabulary[term] = term_id
                self._postings.append(
                    _Postings(np.zeros(0, dtype=DOC_ID_DTYPE), np.zeros(0, dtype=TF_DTYPE))
                )
            self._postings[term_id].append(doc_id, min(tf, MAX_TF))
            term_ids[position] = term_id
        self._df = grown(self._df, len(self._postings))
        np.add.at(self._df, term_ids, 1)
        length = float(sum(counts.values()))
        self._doc_len = grown(self._doc_len, doc_id + 1)
        self._live = grown(self._live, doc_id + 1, False)
        self._doc_len[doc_id] = length
        self._live[doc_id] = True
        self._doc_terms[doc_id] = term_ids
        self.doc_count += 1
        self._total_len += length

    def delete(self, doc_id: int) -> None:
        """Remove a document; statistics update at once. Unknown ids are ignored."""
        term_ids = self._doc_terms.pop(doc_id, None)
        if term_ids is None:
            return
        np.subtract.at(self._df, term_ids, 1)
        self._live[doc_id] = False
        self._tombstones.add(doc_id)
        self.doc_count -= 1
        self._total_len -= float(self._doc_len[doc_id])

    def with_settings(self, settings: BM25Settings) -> LexicalIndex:
        """The same postings scored with other k1 and b (shared, not copied: read only)."""
        other = copy.copy(self)
        other.settings = settings
        return other

    # --- queries -------------------------------------------------------------------------

    @property
    def average_length(self) -> float:
        return self._total_len / self.doc_count if self.doc_count else 0.0

    def idf(self, term_id: int) -> float:
        return _idf(self.doc_count, self._df[term_id])

    def statistics(self, query: str) -> CorpusStatistics:
        """The live documents' count and total length, and the document frequency of each
        of the query's terms found here."""
        vocabulary = self.vocabulary
        terms = {t: int(self._df[vocabulary[t]]) for t in self.analyzer(query) if t in vocabulary}
        return CorpusStatistics(self.doc_count, self._total_len, terms)

    def warm_up(self) -> None:
        """Load the compiled query loop now if this index's queries will run it."""
        bm25_topk.warm_up(len(self._doc_len))

    def postings_count(self, query: str) -> int:
        """How many postings a search for `query` walks (deleted ones included)."""
        terms = {self.vocabulary[t] for t in self.analyzer(query) if t in self.vocabulary}
        return sum(self._postings[term].size for term in terms)

    def matching(self, query: str) -> np.ndarray:
        """A boolean mask over doc ids: the live documents holding a query term."""
        found = np.zeros(len(self._live), dtype=bool)
        for term in set(self.analyzer(query)):
            term_id = self.vocabulary.get(term)
            if term_id is not None:
                postings = self._postings[term_id]
                found[postings.docs[: postings.size]] = True
        return found & self._live

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k documents for `query`, best first: `(doc_ids, scores)` (see `search_counted`)."""
        ids, scores, _ = self.search_counted(query, k, allowed)
        return ids, scores

    def search_counted(
        self,
        query: str,
        k: int,
        allowed: np.ndarray | None = None,
        statistics: CorpusStatistics | None = None,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Top-k documents for `query`, best first.

        Args:
            query: free text, analyzed like the documents.
            k: how many hits at most.
            allowed: optional boolean mask over doc ids; only ids with True are returned.
            statistics: the whole corpus's statistics when this index holds one shard of it
                (scores are then those of one index of the corpus); else its own.

        Returns:
            `(doc_ids, scores, matched)`: at most k of each, and how many allowed live
            documents hold a query term (what the query matches, counted in the same pass).
        """
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), 0)
        if k <= 0 or self.doc_count == 0:
            return empty
        query_terms = Counter(t for t in self.analyzer(query) if t in self.vocabulary)
        if not query_terms:
            return empty
        # Without a filter or tombstones every posting's document is live: the loop skips
        # the mask (an empty one), about 12% of its time at 1M chunks.
        if allowed is not None:
            live = self._live & fit_mask(allowed, len(self._live))
        else:
            live = self._live if self._tombstones else self._live[:0]
        corpus = statistics or CorpusStatistics(self.doc_count, self._total_len, {})
        k1, b = self.settings.k1, self.settings.b
        base, slope = k1 * (1 - b), k1 * b / (corpus.total_length / corpus.documents)
        k = min(k, self.doc_count)
        found_docs = np.empty(k, dtype=np.int64)
        found_scores = np.empty(k, dtype=np.float64)
        postings = [self._postings[self.vocabulary[term]] for term in query_terms]
        starts = np.zeros(len(postings) + 1, dtype=np.int64)
        np.cumsum([p.size for p in postings], out=starts[1:])
        frequencies = statistics.term_documents if statistics is not None else None
        weights = np.array(
            [
                _idf(
                    corpus.documents,
                    self._df[self.vocabulary[term]]
                    if frequencies is None
                    else frequencies.get(term, self._df[self.vocabulary[term]]),
                )
                * repeats
                * (k1 + 1)
                for term, repeats in query_terms.items()
            ],
            dtype=np.float64,
        )
        matched = np.zeros(1, dtype=np.int64)
        loop = bm25_topk.loop_for(len(self._doc_len))
        found = loop(
            np.concatenate([p.docs[: p.size] for p in postings]),
            np.concatenate([p.tfs[: p.size] for p in postings]),
            starts,
            weights,
            self._doc_len,
            live,
            base,
            slope,
            k,
            bm25_topk.WINDOW,
            found_docs,
            found_scores,
            matched,
        )
        candidates, scores = found_docs[:found], found_scores[:found]
        order = np.lexsort((candidates, -scores))
        # float64, as ranked: a float32 copy could tie two documents the order above (and
        # the kernel's cut) tell apart, and a sharded index merges shards by these scores.
        return candidates[order], scores[order], int(matched[0])

    # --- persistence ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Serialize live postings only (tombstones are compacted away)."""
        terms = list(self.vocabulary)
        pointers = np.zeros(len(terms) + 1, dtype=np.int64)
        doc_chunks: list[np.ndarray] = []
        tf_chunks: list[np.ndarray] = []
        for index, term in enumerate(terms):
            postings = self._postings[self.vocabulary[term]]
            docs = postings.docs[: postings.size]
            keep = self._live[docs]
            doc_chunks.append(docs[keep])
            tf_chunks.append(postings.tfs[: postings.size][keep])
            pointers[index + 1] = pointers[index] + int(keep.sum())
        doc_ids = np.array(sorted(self._doc_terms), dtype=np.int64)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            terms=np.array(json.dumps(terms)),
            pointers=pointers,
            docs=np.concatenate(doc_chunks) if doc_chunks else np.zeros(0, DOC_ID_DTYPE),
            tfs=np.concatenate(tf_chunks) if tf_chunks else np.zeros(0, TF_DTYPE),
            doc_ids=doc_ids,
            doc_len=self._doc_len[doc_ids] if len(doc_ids) else np.zeros(0, np.float32),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, analyzer: Analyzer, settings: BM25Settings | None = None
    ) -> LexicalIndex:
        index = cls(analyzer, settings)
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            terms: list[str] = json.loads(str(arrays["terms"]))
            pointers = arrays["pointers"]
            # Files written before 2026-11-25 hold int64 ids and float32 counts: cast (exact).
            docs = arrays["docs"].astype(DOC_ID_DTYPE, copy=False)
            tfs = arrays["tfs"].astype(TF_DTYPE, copy=False)
            doc_ids, doc_len = arrays["doc_ids"], arrays["doc_len"]
        size = int(doc_ids.max()) + 1 if len(doc_ids) else 0
        index._doc_len = np.zeros(size, dtype=np.float32)
        index._live = np.zeros(size, dtype=bool)
        index._doc_len[doc_ids] = doc_len
        index._live[doc_ids] = True
        index._df = np.diff(pointers).astype(np.int64)
        for term_id, term in enumerate(terms):
            index.vocabulary[term] = term_id
            start, end = int(pointers[term_id]), int(pointers[term_id + 1])
            index._postings.append(_Postings(docs[start:end].copy(), tfs[start:end].copy()))
        term_of_posting = np.repeat(np.arange(len(terms), dtype=np.int64), np.diff(pointers))
        order = np.argsort(docs, kind="stable")
        sorted_docs, sorted_terms = docs[order], term_of_posting[order]
        bounds = np.searchsorted(sorted_docs, doc_ids)
        ends = np.searchsorted(sorted_docs, doc_ids, side="right")
        for doc_id, start, end in zip(
            doc_ids.tolist(), bounds.tolist(), ends.tolist(), strict=True
        ):
            index._doc_terms[doc_id] = sorted_terms[start:end].copy()
        index.doc_count = len(doc_ids)
        index._total_len = float(doc_len.sum(dtype=np.float64))
        return index
