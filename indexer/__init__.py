"""Lede's write path: articles in, a crash-safe hybrid (BM25 + FAISS) index out."""

from indexer.chunker import Chunker, ChunkerSettings
from indexer.embedder import DEFAULT_MODEL, Embedder, SentenceTransformerEmbedder
from indexer.errors import (
    ArticleNotFoundError,
    IndexFormatError,
    IndexLockedError,
    InvalidArticleError,
    LedeError,
    SourceError,
)
from indexer.filters import Filters
from indexer.index import LedeIndex, WriteReport
from indexer.manifest import IndexSettings
from indexer.models import Article, Chunk, parse_article

__all__ = [
    "DEFAULT_MODEL",
    "Article",
    "ArticleNotFoundError",
    "Chunk",
    "Chunker",
    "ChunkerSettings",
    "Embedder",
    "Filters",
    "IndexFormatError",
    "IndexLockedError",
    "IndexSettings",
    "InvalidArticleError",
    "LedeError",
    "LedeIndex",
    "SentenceTransformerEmbedder",
    "SourceError",
    "WriteReport",
    "parse_article",
]
