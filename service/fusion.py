"""Combining any number of named ranked lists (one per retriever view) into one."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from lede.indexer.ranked import RankedList

FusionMethod = Literal["rrf", "convex"]
Normalization = Literal["max", "minmax"]
NORMALIZATIONS: tuple[Normalization, ...] = ("max", "minmax")


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


def convex_weights(
    names: Sequence[str], alpha: float, vectors: Collection[str] = ("dense",)
) -> dict[str, float]:
    """Convex fusion's weights: `alpha` shared by the lists searched by the query's vector
    (`vectors`: the dense view), the rest shared by the others."""
    dense = [name for name in names if name in vectors]
    others = [name for name in names if name not in vectors]
    weights = {name: (1.0 - alpha) / len(others) for name in others}
    weights.update({name: alpha / len(dense) for name in dense})
    return weights


def convex_combination(
    lists: Mapping[str, RankedList],
    *,
    weights: Mapping[str, float],
    normalization: Normalization = "max",
) -> dict[int, float]:
    """The weighted sum of any number of named lists, each list's scores scaled to [0, 1]
    first (a list without a weight counts 0). With "bm25" at 1 - alpha and "dense" at alpha
    this is the engine's convex fusion.

    "max" (the default) divides by the list's best score: the floor is the retriever's
    theoretical minimum, 0 for BM25 and for cosine (negative cosines count as 0), so a list
    keeps how far its scores stand above zero. "minmax" maps the list's own worst score to 0.
    A document missing from a truncated list gets that list's lowest scaled score (its own
    score is at most that); one missing from a complete list gets 0.
    """
    scaled = {
        name: dict(zip(ranked.ids, _scale(ranked.scores, normalization), strict=True))
        for name, ranked in lists.items()
        if ranked.ids
    }
    docs = {doc for values in scaled.values() for doc in values}
    fused = dict.fromkeys(docs, 0.0)
    for name, values in scaled.items():
        weight = weights.get(name, 0.0)
        lowest = min(values.values()) if lists[name].truncated else 0.0
        for doc in docs:
            fused[doc] += weight * values.get(doc, lowest)
    return fused


def _scale(scores: Sequence[float], normalization: Normalization) -> list[float]:
    if normalization == "minmax":
        low, high = min(scores), max(scores)
        spread = high - low
        return [(s - low) / spread if spread > 0 else 1.0 for s in scores]
    high = max(scores)
    return [max(s, 0.0) / high if high > 0 else 0.0 for s in scores]
