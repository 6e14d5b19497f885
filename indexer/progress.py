"""The progress bar of a long index run: articles with their rate and ETA, chunks per second.

It draws on a terminal only (or when asked); `lede index --quiet` and pipes get none.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class IndexProgress:
    """Counts articles written (the bar, against `total` when known) and chunks embedded."""

    def __init__(self, total: int | None = None, *, show: bool | None = None):
        enabled = sys.stderr.isatty() if show is None else show
        self._bar = tqdm(total=total, unit="article", desc="indexing", disable=not enabled)
        self._started = time.perf_counter()
        self._chunks = 0
        self._batch_done = 0.0  # articles of the current batch counted so far (a fraction)

    def chunks(self, count: int, batch_articles: int, batch_texts: int) -> None:
        """`count` more texts of a batch of `batch_articles` articles were embedded: the bar
        moves by the same share of the batch's articles, so its rate and ETA stay live."""
        self._chunks += count
        if batch_texts:
            share = batch_articles * count / batch_texts
            before = int(self._batch_done)
            self._batch_done += share
            self._bar.update(int(self._batch_done) - before)
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._bar.set_postfix(chunks=self._chunks, chunks_per_s=f"{self._chunks / elapsed:.1f}")

    def articles(self, count: int) -> None:
        """A batch of `count` articles is stored (the part not yet shown moves the bar)."""
        self._bar.update(count - int(self._batch_done))
        self._batch_done = 0.0

    def close(self) -> None:
        self._bar.close()
