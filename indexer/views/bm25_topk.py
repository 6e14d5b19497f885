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

from collections.abc import Callable
from typing import cast

import numpy as np

# Up to this many document ids numpy costs at most about 0.2 ms a query more than the compiled
# loop (`python -m lede.eval.bench.bm25 --paths`, decision 46).
SMALL_ID_SPACE = 20_000
# The compiled loop scores document ids in windows of this many (decision 29).
WINDOW = 4096


def compiled_needed(id_space: int) -> bool:
    """Whether a query over this many document ids runs the compiled loop."""
    return id_space > SMALL_ID_SPACE


def warm_up(id_space: int) -> None:
    """Compile (or load from numba's cache) the loop now if queries of this index will run it."""
    if compiled_needed(id_space):
        from lede.indexer.views import bm25_kernels

        bm25_kernels.warm_up()


def loop_for(id_space: int) -> Callable[..., int]:
    """The loop that scores a query over an index of this many document ids: numpy's at most
    SMALL_ID_SPACE, else the compiled one (numba imported on this first need). Both take
    `bm25_kernels.top_k`'s arguments and fill its outputs."""
    if not compiled_needed(id_space):
        return numpy_top_k
    from lede.indexer.views import bm25_kernels

    return cast("Callable[..., int]", bm25_kernels.top_k)


def numpy_top_k(
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
    """`bm25_kernels.top_k` in numpy, over the whole id space at once (`window` unused)."""
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
