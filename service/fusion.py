"""Combining ranked lists from several retrievers into one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

FusionMethod = Literal["rrf", "convex"]


@dataclass(frozen=True, slots=True)
class RankedList:
    """One retriever's results: ids best first, with their raw scores."""

    ids: Sequence[int]
    scores: Sequence[float]


def reciprocal_rank_fusion(
    lists: Mapping[str, RankedList], *, k: float = 60.0, weights: Mapping[str, float] | None = None
) -> dict[int, float]:
    """RRF: score(d) = sum over retrievers of weight / (k + rank), ranks starting at 1."""
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, doc in enumerate(ranked.ids, start=1):
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    return fused


def convex_combination(
    lists: Mapping[str, RankedList], *, alpha: float = 0.5, dense: str = "dense"
) -> dict[int, float]:
    """alpha * dense + (1 - alpha) * others, each min-max normalized over its own list.

    A document missing from a list gets 0 for that list (the list's minimum after scaling).
    """
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        if not ranked.ids:
            continue
        weight = alpha if name == dense else 1.0 - alpha
        low, high = min(ranked.scores), max(ranked.scores)
        spread = high - low
        for doc, score in zip(ranked.ids, ranked.scores, strict=True):
            scaled = (score - low) / spread if spread > 0 else 1.0
            fused[doc] = fused.get(doc, 0.0) + weight * scaled
    return fused
