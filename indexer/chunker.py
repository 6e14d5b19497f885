"""Sentence-aware, token-aware chunking with exact character offsets."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from lede.indexer.encoders.tokenizer import TokenCounter
from lede.indexer.models import Article, Chunk
from lede.indexer.sentences import Span, sentence_spans, strip_span


@dataclass(frozen=True, slots=True)
class ChunkerSettings:
    """How articles are cut into passages.

    Attributes:
        max_tokens: passage budget in model tokens (title included when it is embedded).
        overlap_sentences: sentences repeated at the start of the next passage.
        title_max_tokens: the title given to the embedder as context is cut to this many tokens.
    """

    max_tokens: int = 128
    overlap_sentences: int = 1
    title_max_tokens: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError(f"max_tokens must be at least 8, got {self.max_tokens}")
        if self.overlap_sentences < 0:
            raise ValueError(f"overlap_sentences must be >= 0, got {self.overlap_sentences}")
        if self.title_max_tokens < 0:
            raise ValueError(f"title_max_tokens must be >= 0, got {self.title_max_tokens}")


class Chunker:
    """Cuts articles into passages that fit the embedding model's window, never truncating."""

    def __init__(self, tokens: TokenCounter, settings: ChunkerSettings | None = None):
        """`tokens`: the embedding model's tokenizer (an embedder is one; so is a
        `ModelTokenizer`, which loads no model)."""
        self.tokens = tokens
        self.settings = settings or ChunkerSettings()

    def embedding_title(self, title: str) -> str:
        """The title as given to the embedder: at most `title_max_tokens` tokens."""
        title = " ".join(title.split())
        if not title or self.settings.title_max_tokens == 0:
            return ""
        spans = self.tokens.token_spans(title)
        if len(spans) <= self.settings.title_max_tokens:
            return title
        return title[: spans[self.settings.title_max_tokens - 1][1]]

    def embedding_inputs(self, article: Article, chunks: list[Chunk]) -> list[str]:
        """Texts to embed: the (shortened) title as context, then the passage."""
        title = self.embedding_title(article.title)
        return [f"{title}\n{chunk.text}" if title else chunk.text for chunk in chunks]

    def budget(self, article: Article) -> int:
        """Tokens available to the passage text once the title has taken its share."""
        title = self.embedding_title(article.title)
        title_tokens = self.tokens.count_tokens([title])[0] + 1 if title else 0
        return max(4, min(self.settings.max_tokens, self.tokens.max_tokens) - title_tokens)

    def chunk(self, article: Article) -> list[Chunk]:
        """Cut an article into chunks whose `start`/`end` index `article.text` exactly."""
        text = article.text
        budget = self.budget(article)
        pieces = self._fit_pieces(text, sentence_spans(text), budget)
        if not pieces:
            return []
        counts = self.tokens.count_tokens([text[s:e] for s, e in pieces])
        chunks = []
        for ordinal, (first, last) in enumerate(self._pack(text, pieces, counts, budget)):
            start, end = pieces[first][0], pieces[last][1]
            sentences = tuple((s - start, e - start) for s, e in pieces[first : last + 1])
            chunks.append(Chunk(article.id, ordinal, start, end, text[start:end], sentences))
        return chunks

    def _fit_pieces(self, text: str, spans: list[Span], budget: int) -> list[Span]:
        """Sentences, with any sentence longer than the budget cut at token boundaries."""
        counts = self.tokens.count_tokens([text[s:e] for s, e in spans])
        pieces: list[Span] = []
        for span, count in zip(spans, counts, strict=True):
            if count <= budget:
                pieces.append(span)
            else:
                pieces.extend(self._split_long(text, span, budget))
        return pieces

    def _split_long(self, text: str, span: Span, budget: int) -> list[Span]:
        start, end = span
        if end - start <= 1:
            return [span]
        token_spans = self.tokens.token_spans(text[start:end])
        cuts = [start + token_spans[i][0] for i in range(budget, len(token_spans), budget)]
        bounds = [start, *[c for c in cuts if start < c < end], end]
        result: list[Span] = []
        for piece_start, piece_end in itertools.pairwise(bounds):
            piece = strip_span(text, piece_start, piece_end)
            if piece is None:
                continue
            if self.tokens.count_tokens([text[piece[0] : piece[1]]])[0] <= budget:
                result.append(piece)
            else:  # tokenizing a substring can add a token or two: halve and retry
                middle = _middle_cut(text, piece)
                if middle is None:
                    result.append(piece)
                    continue
                for half in ((piece[0], middle), (middle, piece[1])):
                    trimmed = strip_span(text, *half)
                    if trimmed is not None:
                        result.extend(self._split_long(text, trimmed, budget))
        return result

    def _pack(
        self, text: str, pieces: list[Span], counts: list[int], budget: int
    ) -> list[tuple[int, int]]:
        """Greedily group consecutive pieces up to the budget, with sentence overlap: the
        first and last piece of each chunk."""
        chunks: list[tuple[int, int]] = []
        first = 0
        while first < len(pieces):
            last, total = first, counts[first]
            while last + 1 < len(pieces) and total + counts[last + 1] <= budget:
                last += 1
                total += counts[last]
            # Joined text can tokenize differently from its parts; verify and shrink.
            while last > first:
                joined = text[pieces[first][0] : pieces[last][1]]
                if self.tokens.count_tokens([joined])[0] <= budget:
                    break
                last -= 1
            chunks.append((first, last))
            if last + 1 >= len(pieces):
                break
            first = max(first + 1, last + 1 - self.settings.overlap_sentences)
        return chunks


def _middle_cut(text: str, span: Span) -> int | None:
    start, end = span
    if end - start < 2:
        return None
    middle = (start + end) // 2
    # Prefer whitespace near the middle so words stay whole.
    for offset in range(0, (end - start) // 4):
        for candidate in (middle - offset, middle + offset):
            if start < candidate < end and text[candidate].isspace():
                return candidate
    return middle
