"""Which sentences of a passage match a query: character spans for highlighting."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lede.indexer.sentences import sentence_spans


def sentence_overlap(query_terms: set[str], sentence_terms: list[str]) -> float:
    """Fraction of the query's distinct terms that occur in the sentence."""
    if not query_terms:
        return 0.0
    return len(query_terms.intersection(sentence_terms)) / len(query_terms)


def highlight_spans(
    text: str,
    offset: int,
    query_terms: set[str],
    analyze: Callable[[str], list[str]],
    sentences: Sequence[tuple[int, int]] | None = None,
    limit: int = 2,
) -> list[tuple[int, int]]:
    """Spans (into the article, via `offset`) of up to `limit` best-matching sentences.

    Lexical, like a search engine's highlighter: sentences sharing no analyzed term with the
    query are never highlighted. Spans come back in reading order. `sentences` are the
    passage's sentence spans as the chunker stored them; without them the text is split here.
    """
    scored = []
    for start, end in sentence_spans(text) if sentences is None else sentences:
        overlap = sentence_overlap(query_terms, analyze(text[start:end]))
        if overlap > 0:
            scored.append((overlap, start, end))
    best = sorted(scored, key=lambda item: (-item[0], item[1]))[:limit]
    return sorted((offset + start, offset + end) for _, start, end in best)
