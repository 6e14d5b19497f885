"""The top k of a BM25 query: numpy over a small index, the compiled loop over a large one.

The compiled loop (`bm25_kernels`, numba) is what makes BM25 fast at scale, but loading numba
costs a process about 110 MB of memory (LLVM's library, and the scipy numba imports), more
than a small index and its models together. A query over an index of at most SMALL_ID_SPACE
document ids is scored here with numpy instead, in the same arithmetic and the same order
(each term's contribution in float32, added in float64 in query-term order), so its scores
and tie order are bit-identical to the loop's (`tests/test_lexical.py` checks both paths
against one reference). numba is imported on the first query over a larger index, or by
`warm_up` when the index is already larger (decision 46).
"""

from __future__ import annotations

import numpy as np

# Below this many document ids numpy takes at most about as long as the compiled loop plus its
# call (`python -m lede.eval.bench_bm25 --paths`, decision 46).
SMALL_ID_SPACE = 20_000


def compiled_needed(id_space: int) -> bool:
    """Whether a query over this many document ids runs the compiled loop."""
    return id_space > SMALL_ID_SPACE


def warm_up(id_space: int) -> None:
    """Compile (or load from numba's cache) the loop now if queries of this index will run it."""
    if compiled_needed(id_space):
        from lede.indexer import bm25_kernels

        bm25_kernels.warm_up()


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
    out_docs: np.ndarray,
    out_scores: np.ndarray,
    matched: np.ndarray,
) -> int:
    """The k best (score, lowest id on ties) live documents; see `bm25_kernels.top_k`, whose
    arguments and results these are (without its window)."""
    if compiled_needed(doc_len.shape[0]):
        from lede.indexer import bm25_kernels

        return int(
            bm25_kernels.top_k(
                docs,
                tfs,
                starts,
                weights,
                doc_len,
                live,
                base,
                slope,
                k,
                bm25_kernels.WINDOW,
                out_docs,
                out_scores,
                matched,
            )
        )
    return _numpy_top_k(
        docs, tfs, starts, weights, doc_len, live, base, slope, k, out_docs, out_scores, matched
    )


def _numpy_top_k(
    docs: np.ndarray,
    tfs: np.ndarray,
    starts: np.ndarray,
    weights: np.ndarray,
    doc_len: np.ndarray,
    live: np.ndarray,
    base: float,
    slope: float,
    k: int,
    out_docs: np.ndarray,
    out_scores: np.ndarray,
    matched: np.ndarray,
) -> int:
    b, s = np.float32(base), np.float32(slope)
    totals = np.zeros(doc_len.shape[0], dtype=np.float64)
    touched = np.zeros(doc_len.shape[0], dtype=bool)
    for t in range(weights.shape[0]):
        term_docs = docs[starts[t] : starts[t + 1]]
        term_tfs = tfs[starts[t] : starts[t + 1]].astype(np.float32)
        if live.shape[0] > 0:
            keep = live[term_docs]
            term_docs, term_tfs = term_docs[keep], term_tfs[keep]
        w = np.float32(weights[t])
        if s == 0:
            part = (w * term_tfs) / (term_tfs + b)
        else:
            part = (w * term_tfs) / ((term_tfs + b) + s * doc_len[term_docs])
        # A term's postings hold each document once, so this fancy-index add is exact.
        totals[term_docs] += part
        touched[term_docs] = True
    candidates = np.flatnonzero(touched)
    matched[0] += candidates.size
    scores = totals[candidates]
    best = np.lexsort((candidates, -scores))[:k]
    out_docs[: best.size] = candidates[best]
    out_scores[: best.size] = scores[best]
    return int(best.size)
