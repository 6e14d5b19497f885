"""Compiled (numba) loops of a BM25 query: add a term's postings into an accumulator, pick top k.

Each loop is one pass over the query terms' postings, so a query costs time in proportion to
its postings only; numpy's fancy indexing needed about six passes with temporaries, and a
pass over the whole accumulator (decision 23). The arithmetic is the same, in the same order,
as the numpy expression it replaced, so scores are bit-identical.

The accumulator is a per-thread scratch array as long as the corpus, kept all zeros between
queries: `top_k` resets every entry it reads, and every entry `accumulate` wrote is read.
"""

from __future__ import annotations

import heapq
import threading

import numba
import numpy as np

_scratch = threading.local()


def scratch(size: int) -> np.ndarray:
    """This thread's zeroed float64 accumulator of at least `size` entries."""
    totals: np.ndarray | None = getattr(_scratch, "totals", None)
    if totals is None or len(totals) < size:
        totals = np.zeros(max(size, 1024), dtype=np.float64)
        _scratch.totals = totals
    return totals


def discard_scratch() -> None:
    """Drop this thread's accumulator (after a query was interrupted midway)."""
    _scratch.totals = None


@numba.njit(cache=True, nogil=True)  # type: ignore[misc]
def accumulate(
    totals: np.ndarray,
    docs: np.ndarray,
    tfs: np.ndarray,
    doc_len: np.ndarray,
    live: np.ndarray,
    weight: float,
    base: float,
    slope: float,
) -> None:
    """totals[d] += weight * tf / (tf + base + slope * len(d)) for each live posting (d, tf).

    Computed in float32 like the tf arrays, then added in float64. Without length
    normalization (slope 0, BM25's b = 0, the default) the loop skips the document lengths:
    one random read less per posting, about half the time at 1M chunks, same bits
    ((tf + b) + 0 * len is tf + b exactly).
    """
    w = np.float32(weight)
    b = np.float32(base)
    s = np.float32(slope)
    if s == 0:
        for i in range(docs.shape[0]):
            doc = docs[i]
            if live[doc]:
                tf = tfs[i]
                totals[doc] += (w * tf) / (tf + b)
        return
    for i in range(docs.shape[0]):
        doc = docs[i]
        if live[doc]:
            tf = tfs[i]
            totals[doc] += (w * tf) / ((tf + b) + s * doc_len[doc])


@numba.njit(cache=True, nogil=True)  # type: ignore[misc]
def top_k(
    totals: np.ndarray, docs: np.ndarray, k: int, out_docs: np.ndarray, out_scores: np.ndarray
) -> int:
    """The k best (score, lowest id on ties) of the documents in `docs` (repeats allowed).

    Resets `totals` to zero wherever it reads it. Fills `out_*` unordered; returns the count.
    """
    heap = [(0.0, np.int64(0))]
    heap.pop()
    for i in range(docs.shape[0]):
        doc = docs[i]
        score = totals[doc]
        if score > 0.0:
            totals[doc] = 0.0
            entry = (score, -doc)
            if len(heap) < k:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
    for j in range(len(heap)):
        score, negative_doc = heap[j]
        out_docs[j] = -negative_doc
        out_scores[j] = score
    return len(heap)


def warm_up() -> None:
    """Compile the loops (or load them from numba's cache) before the first query needs them."""
    totals = np.zeros(2, dtype=np.float64)
    docs = np.array([1], dtype=np.int64)
    tfs, doc_len, live = np.ones(1, np.float32), np.ones(2, np.float32), np.ones(2, bool)
    accumulate(totals, docs, tfs, doc_len, live, 1.0, 0.0, 0.0)  # the types queries pass
    top_k(totals, docs, 1, np.empty(1, np.int64), np.empty(1, np.float64))
