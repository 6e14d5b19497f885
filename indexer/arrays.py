"""Arrays indexed by row id that grow as ids arrive (BM25's, FAISS's and the catalog's)."""

from __future__ import annotations

import numpy as np


def grown(array: np.ndarray, size: int, fill: float | bool = 0) -> np.ndarray:
    """`array` itself when it holds `size` entries, else a copy at least twice as long (so
    adds cost amortized O(1)), the new entries set to `fill`."""
    if size <= len(array):
        return array
    bigger = np.full(max(size, 2 * len(array), 16), fill, dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger
