"""`RankedList`: what every retriever view returns for a query, and what fusion combines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RankedList:
    """One retriever's results: row ids best first (ties: lower id first), with raw scores.

    `truncated` says the retriever stopped at a depth, so chunks not listed may score up to
    the last one; False means every chunk it scores above its floor is listed. `matched` is how
    many allowed chunks the query matched in all (None where the retriever ranks every chunk,
    as dense retrieval does).
    """

    ids: Sequence[int]
    scores: Sequence[float]
    truncated: bool = True
    matched: int | None = None
