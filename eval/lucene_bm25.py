"""rank-bm25's scoring loop with Lucene's idf: the reference Lede's BM25 is checked against.

rank-bm25's `BM25Okapi` uses idf = ln((N - df + 0.5) / (df + 0.5)), which goes negative for
words in more than half the documents; Lucene (and Lede) use ln(1 + (N - df + 0.5) / (df + 0.5)).
The tests compare scores with it, and the BM25 benchmarks time it and compare top-10s.
"""

from __future__ import annotations

import math

from rank_bm25 import BM25Okapi


class LuceneBM25(BM25Okapi):  # type: ignore[misc]
    """rank-bm25's loop with the non-negative idf that Lede uses."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        self.idf = {
            word: math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))
            for word, freq in nd.items()
        }
