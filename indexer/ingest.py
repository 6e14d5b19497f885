"""Ingest in stages that may run in different processes: read -> chunk -> embed -> write.

- read: the caller's (`sources.read_source`, an HTTP body, a Ray Data reader).
- chunk (`chunk_articles`): needs only the model's tokenizer (`tokenizer.ModelTokenizer`),
  not the model.
- embed (`embed_articles`): an injected embedder (its device, batch size and backend are the
  embedder's own: `embedder.make_embedder`); embeddings already stored for an unchanged
  chunk input are reused rather than recomputed.
- write (`LedeIndex.write_prepared`): the only stage under the index's write lock; the new
  vectors go to the views from memory.

Every index's `add` is `write_articles`, the one batch loop, over a `WriteTarget`: one index
and a sharded index run a batch through the stages in this process (`embed_and_store`), an
index on a Ray cluster hands each batch to its writer actor. Progress is reported to a hook
that the caller owns (e.g. the CLI's `IndexProgress` bar).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lede.indexer.chunker import Chunker
from lede.indexer.encoders.embedder import Embedder
from lede.indexer.encoders.tokenizer import TokenCounter
from lede.indexer.errors import InvalidArticleError, StorageError
from lede.indexer.models import Article, Chunk

if TYPE_CHECKING:
    from lede.indexer.manifest import Manifest

EMBED_SLICE = 256  # texts per embedder call: how often progress is reported


class Progress(Protocol):
    """Where ingest reports its progress (`progress.IndexProgress` draws it as a bar)."""

    def chunks(self, count: int, batch_articles: int, batch_texts: int) -> None:
        """`count` more of a batch's `batch_texts` texts were embedded."""

    def articles(self, count: int) -> None:
        """A batch of `count` articles is stored."""


@dataclass(slots=True)
class WriteReport:
    """What a write did, in the shape of `lede index --json`."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0
    embedded: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def include(self, other: WriteReport) -> None:
        """Add what `other` (a part of this write, done elsewhere) counted."""
        for name in ("added", "updated", "unchanged", "deleted", "chunks", "embedded"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.extend(other.skipped)

    def counts(self) -> dict[str, int]:
        """The counts as `lede index --json` and `POST /articles` report them."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "chunks": self.chunks,
        }


@dataclass(slots=True)
class PreparedArticle:
    """An article cut into chunks, with the texts to embed and their hashes."""

    article: Article
    content_hash: str
    chunks: list[Chunk]
    inputs: list[str]
    input_hashes: list[str]


@dataclass(slots=True)
class EmbeddedBatch:
    """Prepared articles with an embedding for every input hash they hold."""

    articles: list[PreparedArticle]
    vectors: dict[str, np.ndarray]
    embedded: int  # how many of the vectors were computed (the rest were stored already)


def input_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def duplicate_ids(articles: Iterable[Article]) -> list[str]:
    """The ids that appear more than once among these articles, sorted."""
    counts = Counter(article.id for article in articles)
    return sorted(article_id for article_id, count in counts.items() if count > 1)


def check_unique_ids(articles: Iterable[Article]) -> None:
    """Refuse a batch that holds one article id twice (which version would win is unclear)."""
    duplicates = duplicate_ids(articles)
    if duplicates:
        raise InvalidArticleError(f"article id {duplicates[0]!r} appears twice in one batch")


def chunk_articles(articles: Iterable[Article], chunker: Chunker) -> list[PreparedArticle]:
    """The chunk stage: each article's chunks and the texts the embedder will read."""
    prepared = []
    for article in articles:
        chunks = chunker.chunk(article)
        inputs = chunker.embedding_inputs(article, chunks)
        prepared.append(
            PreparedArticle(
                article, article.content_hash(), chunks, inputs, [input_hash(t) for t in inputs]
            )
        )
    return prepared


def embed_articles(
    prepared: list[PreparedArticle],
    embedder: Embedder,
    known: dict[str, np.ndarray] | None = None,
    progress: Progress | None = None,
) -> EmbeddedBatch:
    """The embed stage: an embedding for every input not in `known` (each distinct text once)."""
    vectors = dict(known or {})
    todo: dict[str, str] = {}
    for item in prepared:
        for text, digest in zip(item.inputs, item.input_hashes, strict=True):
            if digest not in vectors:
                todo.setdefault(digest, text)
    # Longest first by tokens, so that each slice, and each padded batch within it, holds
    # texts of about one length: 1% padding instead of 15% on Cranfield (decision 58).
    items = list(todo.items())
    lengths = np.asarray(embedder.count_tokens([text for _, text in items]), dtype=np.int64)
    pending = [items[row] for row in np.argsort(-lengths, kind="stable")]
    digests = [digest for digest, _ in pending]
    texts = [text for _, text in pending]
    parts = []
    for start in range(0, len(texts), EMBED_SLICE):
        parts.append(embedder.embed(texts[start : start + EMBED_SLICE]))
        if progress is not None:
            progress.chunks(len(parts[-1]), len(prepared), len(texts))
    if parts:
        vectors.update(zip(digests, np.concatenate(parts), strict=True))
    return EmbeddedBatch(prepared, vectors, len(todo))


def select_changed(
    articles: list[Article], stored: dict[str, str], report: WriteReport
) -> list[Article]:
    """The articles of a batch that are new or changed, by content hash against `stored`
    (the stored articles' hashes); the others are counted unchanged in `report`."""
    check_unique_ids(articles)
    changed = [a for a in articles if stored.get(a.id) != a.content_hash()]
    report.unchanged += len(articles) - len(changed)
    return changed


def prepare_changed(
    changed: list[Article],
    stored: dict[str, str],
    chunker: Chunker,
    embedder: Embedder,
    stored_embeddings: Callable[[list[str]], dict[str, np.ndarray]],
    report: WriteReport,
    progress: Progress | None = None,
) -> EmbeddedBatch:
    """The chunk and embed stages for the `changed` articles (`select_changed`), counted in
    `report`. `stored_embeddings(article_ids)` reads the embeddings the updated articles
    already hold, by input hash, so unchanged chunk texts are not embedded again."""
    prepared = chunk_articles(changed, chunker)
    known = stored_embeddings([a.id for a in changed if a.id in stored])
    embedded = embed_articles(prepared, embedder, known, progress)
    report.updated += sum(1 for a in changed if a.id in stored)
    report.added += sum(1 for a in changed if a.id not in stored)
    report.chunks += sum(len(p.chunks) for p in prepared)
    report.embedded += embedded.embedded
    return embedded


class WriteTarget(Protocol):
    """What `write_articles` writes to: one index, a sharded index, or one on a cluster."""

    def add_batch(
        self,
        articles: list[Article],
        report: WriteReport,
        progress: Progress | None,
        lock_timeout: float,
    ) -> None:
        """Store one batch whole (counted in `report`)."""

    def checkpoint_if_due(self, lock_timeout: float = 60.0) -> None: ...


class EmbeddingTarget(WriteTarget, Protocol):
    """An index that chunks and embeds a batch in this process, then stores it: one index and
    a sharded index (`EmbeddingWrites` gives them `add`)."""

    manifest: Manifest

    @property
    def embedder(self) -> Embedder: ...

    @property
    def tokens(self) -> TokenCounter:
        """The model's tokenizer, for chunking."""

    def content_hashes(self, article_ids: Sequence[str]) -> dict[str, str]: ...

    def embeddings_by_input(self, article_ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def store_prepared(self, batch: EmbeddedBatch, lock_timeout: float) -> None:
        """The write stage, under the index's write lock."""


def embed_and_store(
    target: EmbeddingTarget,
    articles: list[Article],
    report: WriteReport,
    progress: Progress | None,
    lock_timeout: float,
) -> None:
    """One batch through the stages: skip the unchanged articles, chunk and embed the rest
    (without the write lock), store them (under it)."""
    stored = target.content_hashes([a.id for a in articles])
    changed = select_changed(articles, stored, report)
    if changed:
        embedded = prepare_changed(
            changed,
            stored,
            Chunker(target.tokens, target.manifest.settings.chunker),
            target.embedder,
            target.embeddings_by_input,
            report,
            progress,
        )
        target.store_prepared(embedded, lock_timeout)
    if progress is not None:
        progress.articles(len(articles))


def write_articles(
    target: WriteTarget,
    articles: Iterable[Article],
    *,
    batch_size: int = 512,
    progress: Progress | None = None,
    on_batch: Callable[[WriteReport], None] | None = None,
    checkpoint: bool = True,
    lock_timeout: float = 60.0,
) -> WriteReport:
    """The one batch loop of every index's `add`: `articles` to `target` `batch_size` at a
    time (`on_batch` after each full batch), then a checkpoint when one is due (unless
    `checkpoint` is off); a storage failure says how much of the run was committed before it."""
    report = WriteReport()
    try:
        batch: list[Article] = []
        for article in articles:
            batch.append(article)
            if len(batch) >= batch_size:
                target.add_batch(batch, report, progress, lock_timeout)
                batch = []
                if on_batch:
                    on_batch(report)
        if batch:
            target.add_batch(batch, report, progress, lock_timeout)
        if checkpoint:
            target.checkpoint_if_due(lock_timeout)
    except StorageError as error:
        committed = report.added + report.updated
        raise StorageError(
            f"{error} ({committed} new or changed articles of this run were committed "
            "before it; run the same command again once there is space: unchanged "
            "articles are skipped)"
        ) from error
    return report


class EmbeddingWrites:
    """`add` for the indexes that chunk and embed in this process (`LedeIndex`,
    `ShardedIndex`): the one batch loop, each batch through `embed_and_store`."""

    def add(
        self: EmbeddingTarget,
        articles: Iterable[Article],
        *,
        batch_size: int = 512,
        progress: Progress | None = None,
        on_batch: Callable[[WriteReport], None] | None = None,
        checkpoint: bool = True,
        lock_timeout: float = 60.0,
    ) -> WriteReport:
        """Add new articles, update changed ones, skip unchanged ones (by content hash).

        Batch by batch: chunk and embed without the write lock, then store the batch under it
        in one transaction per store (an article is stored whole or not at all). `progress`
        hears of every embedded slice and stored batch (the caller owns it: the CLI's bar).
        """
        return write_articles(
            self,
            articles,
            batch_size=batch_size,
            progress=progress,
            on_batch=on_batch,
            checkpoint=checkpoint,
            lock_timeout=lock_timeout,
        )

    def add_batch(
        self: EmbeddingTarget,
        articles: list[Article],
        report: WriteReport,
        progress: Progress | None,
        lock_timeout: float,
    ) -> None:
        embed_and_store(self, articles, report, progress, lock_timeout)
