"""Lede's write path: articles in, a crash-safe hybrid (BM25 + FAISS) index out."""

from lede.indexer.chunker import Chunker, ChunkerSettings
from lede.indexer.encoders.embedder import DEFAULT_MODEL, Embedder, SentenceTransformerEmbedder
from lede.indexer.errors import (
    ArticleNotFoundError,
    IndexFormatError,
    IndexLockedError,
    InvalidArticleError,
    LedeError,
    SourceError,
)
from lede.indexer.filters import Filters
from lede.indexer.index import LedeIndex
from lede.indexer.ingest import WriteReport
from lede.indexer.manifest import IndexSettings
from lede.indexer.models import Article, Chunk, parse_article

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
