"""The compiled (numba) loop of a BM25 query: score the query terms' postings, pick the top k.

One pass over the postings, window by window of document ids: within a window of `window` ids
(`bm25_topk.WINDOW`) every term adds its postings into a small accumulator (32 KB, in the L1
cache), and the window's touched documents then go through the top-k heap. The postings are
read in order and every random access stays inside the window, so the cost is the same whether
the caches are warm or cold (the query encoder, running beside BM25, evicts them): at 1M
chunks about 2 ms against 3 ms for one accumulator as long as the corpus (decision 29; 1.3 ms
since decision 30), which also saved 8 MB per thread. Lucene's BooleanScorer scores
disjunctions in windows the same way.

numba caches the compiled loop beside this file, keyed by the file's size and time: editing
this file is what invalidates a cache compiled under another module name (before `lede.`).

A document's contributions are added in query-term order, each computed in float32 (the
stored uint16 term counts convert exactly) and added in float64, exactly as the numpy
expression these loops replaced, so scores are bit-identical to it (decision 23). The inner
loop has no data-dependent branch but the live mask's (decision 30).
"""

from __future__ import annotations

import heapq

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)  # type: ignore[misc]
def top_k(
    docs: np.ndarray,
    tfs: np.ndarray,
    starts: np.ndarray,
    weights: np.ndarray,
    doc_len: np.ndarray,
    live: np.ndarray,
    base: float,
    slope: float,
    k: int,
    window: int,
    out_docs: np.ndarray,
    out_scores: np.ndarray,
    matched: np.ndarray,
) -> int:
    """The k best (score, lowest id on ties) live documents of the query.

    Term t's postings are `docs[starts[t]:starts[t + 1]]` (ascending ids) with their `tfs`;
    a posting scores weights[t] * tf / (tf + base + slope * doc_len[doc]). Without length
    normalization (slope 0, BM25's b = 0, the default) the loop skips the document lengths,
    with the same bits ((tf + b) + 0 * len is tf + b exactly). Only documents marked in
    `live` score; an empty `live` means every posting's document is live (no mask to read).
    Fills `out_*` unordered; returns the count. Adds to `matched[0]` how many live documents
    hold a query term (each window's touched documents: a count the loop has anyway).
    """
    b = np.float32(base)
    s = np.float32(slope)
    position = starts[:-1].copy()
    ends = starts[1:]
    sums = np.zeros(window, dtype=np.float64)
    check_live = live.shape[0] > 0
    touched = np.empty(window + 1, dtype=np.int64)  # one spare entry, see below
    heap = [(0.0, np.int64(0))]
    heap.pop()
    none_left = np.iinfo(np.int64).max
    floor = -1.0  # the heap's lowest score once it holds k; below it nothing gets in
    while True:
        first = none_left
        for t in range(weights.shape[0]):
            if position[t] < ends[t] and docs[position[t]] < first:
                first = docs[position[t]]
        if first == none_left:
            break
        low = first - first % window
        high = low + window
        count = 0
        for t in range(weights.shape[0]):
            w = np.float32(weights[t])
            i = position[t]
            while i < ends[t] and docs[i] < high:
                doc = docs[i]
                if not check_live or live[doc]:
                    tf = np.float32(tfs[i])
                    slot = doc - low
                    # Branch-free: a slot's first posting keeps its entry, later ones overwrite
                    # the spare one past the end (a branch here mispredicts half the time).
                    touched[count] = slot
                    count += sums[slot] == 0.0
                    if s == 0:
                        sums[slot] += (w * tf) / (tf + b)
                    else:
                        sums[slot] += (w * tf) / ((tf + b) + s * doc_len[doc])
                i += 1
            position[t] = i
        matched[0] += count
        for j in range(count):
            slot = touched[j]
            score = sums[slot]
            sums[slot] = 0.0
            # The heap's root is its worst entry: the lowest score, and of tied ones the
            # highest id (entries hold -id). A window's documents arrive in the order the terms
            # touched them, not by id, so a tie with the floor enters when its id is lower.
            if score >= floor:
                entry = (score, -(low + slot))
                if len(heap) < k:
                    heapq.heappush(heap, entry)
                    if len(heap) == k:
                        floor = heap[0][0]
                elif entry > heap[0]:
                    heapq.heapreplace(heap, entry)
                    floor = heap[0][0]
    for j in range(len(heap)):
        score, negative_doc = heap[j]
        out_docs[j] = -negative_doc
        out_scores[j] = score
    return len(heap)


def warm_up() -> None:
    """Compile the loops (or load them from numba's cache) before the first query needs them."""
    docs, starts = np.array([1], dtype=np.int32), np.array([0, 1], dtype=np.int64)
    tfs, doc_len, live = np.ones(1, np.uint16), np.ones(2, np.float32), np.ones(2, bool)
    weights = np.ones(1, dtype=np.float64)
    top_k(  # the types queries pass
        docs,
        tfs,
        starts,
        weights,
        doc_len,
        live,
        1.0,
        0.0,
        1,
        4096,  # any window: the argument types are what compile
        np.empty(1, np.int64),
        np.empty(1, np.float64),
        np.zeros(1, np.int64),
    )
