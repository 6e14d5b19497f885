"""`LedeIndex`: one index directory, its SQLite source of truth and its derived views.

Writes go to SQLite first (one transaction per batch, every chunk change logged); the BM25
view, the FAISS view and the filter catalog then follow the change log. The views are
checkpointed to files written atomically; on open they are reconciled with SQLite, so a
crash at any point loses no committed write and never leaves an unreadable index.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lede.indexer.chunker import Chunker
from lede.indexer.dense import DenseIndex
from lede.indexer.embedder import Embedder, SentenceTransformerEmbedder
from lede.indexer.errors import IndexFormatError, InvalidArticleError, StorageError
from lede.indexer.files import WriteLock, atomic_write
from lede.indexer.filters import Catalog, Filters
from lede.indexer.lexical import LexicalIndex
from lede.indexer.manifest import (
    IndexSettings,
    Manifest,
    ModelInfo,
    read_manifest,
    write_manifest,
)
from lede.indexer.models import Article
from lede.indexer.progress import IndexProgress
from lede.indexer.rwlock import ReadWriteLock
from lede.indexer.store import ArticleWrite, ChunkRecord, Store, is_storage_failure
from lede.indexer.text_analysis import Analyzer

logger = logging.getLogger(__name__)

DATABASE_NAME = "lede.sqlite"
EMBED_SLICE = 256  # texts per embedder call while indexing: how often the progress bar moves
_CHECKPOINT = re.compile(r"^(bm25|dense)-(\d+)\.(npz|faiss)$")


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


def _input_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LedeIndex:
    """An open index directory. Use `LedeIndex.open` or `LedeIndex.create`."""

    def __init__(self, path: Path, manifest: Manifest, store: Store, embedder: Embedder | None):
        self.path = path
        self.manifest = manifest
        self.store = store
        self._embedder = embedder
        settings = manifest.settings
        self.analyzer = Analyzer(settings.analyzer)
        self._views_lock = ReadWriteLock()
        self.catalog = Catalog()
        self.lexical = LexicalIndex(self.analyzer, settings.bm25)
        self.dense = DenseIndex(manifest.model.dimension, settings.faiss_factory)
        self.seq = 0
        self._checkpoint_seq = -1
        self._embedder_checked = False

    # --- opening --------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        settings: IndexSettings | None = None,
    ) -> LedeIndex:
        """Create a new index directory (or open it if it exists with the same model)."""
        path = Path(path)
        if (path / "manifest.json").exists():
            return cls.open(path, embedder=embedder, model=model)
        if path.exists() and any(path.iterdir()):
            raise IndexFormatError(f"{path} exists, is not empty and is not a Lede index")
        embedder = embedder or SentenceTransformerEmbedder(model or "all-MiniLM-L6-v2")
        settings = settings or IndexSettings()
        info = ModelInfo(embedder.name, embedder.dimension, embedder.revision)
        path.mkdir(parents=True, exist_ok=True)
        store = Store(path / DATABASE_NAME)
        store.create_schema()
        manifest = Manifest.new(info, settings)
        write_manifest(path, manifest)
        index = cls(path, manifest, store, embedder)
        index._embedder_checked = True
        index._load_views()
        return index

    @classmethod
    def open(
        cls, path: Path, *, embedder: Embedder | None = None, model: str | None = None
    ) -> LedeIndex:
        """Open an existing index; refuses a model other than the one it was built with."""
        path = Path(path)
        manifest = read_manifest(path)
        if embedder is None:
            embedder = SentenceTransformerEmbedder(model or manifest.model.name)
        if embedder.name != manifest.model.name and model is not None:
            raise IndexFormatError(
                f"{path} was built with model {manifest.model.name!r}, not {embedder.name!r}; "
                "use the same --model or index into a new directory"
            )
        store = Store(path / DATABASE_NAME)
        index = cls(path, manifest, store, embedder)
        index._load_views()
        return index

    def _check_model(self, embedder: Embedder) -> None:
        expected = self.manifest.model
        if embedder.name != expected.name or embedder.dimension != expected.dimension:
            raise IndexFormatError(
                f"{self.path} was built with {expected.name!r} ({expected.dimension}-d); "
                f"got {embedder.name!r} ({embedder.dimension}-d). Use the same model or "
                "index into a new directory"
            )
        if embedder.revision != expected.revision:
            raise IndexFormatError(
                f"{self.path} was built with revision {expected.revision} of {expected.name!r}, "
                f"but revision {embedder.revision} is installed; rebuild the index"
            )

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> LedeIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        """The index's embedding model, checked against the manifest on first use."""
        if self._embedder is None:
            self._embedder = SentenceTransformerEmbedder(self.manifest.model.name)
        if not self._embedder_checked:
            self._check_model(self._embedder)
            self._embedder_checked = True
        return self._embedder

    # --- views ----------------------------------------------------------------------------

    def _latest_checkpoint(self, kind: str) -> tuple[Path, int] | None:
        found = []
        for candidate in self.path.iterdir():
            match = _CHECKPOINT.match(candidate.name)
            if match and match.group(1) == kind:
                found.append((int(match.group(2)), candidate))
        if not found:
            return None
        seq, newest = max(found)
        return newest, seq

    def _load_views(self) -> None:
        """Load checkpoints, then reconcile them with SQLite's live chunks."""
        seq = self.store.last_seq()  # read first: later changes are replayed by refresh()
        lexical_file = self._latest_checkpoint("bm25")
        dense_file = self._latest_checkpoint("dense")
        try:
            if lexical_file:
                self.lexical = LexicalIndex.from_bytes(
                    lexical_file[0].read_bytes(), self.analyzer, self.manifest.settings.bm25
                )
            if dense_file:
                self.dense = DenseIndex.from_bytes(
                    dense_file[0].read_bytes(),
                    self.manifest.model.dimension,
                    self.manifest.settings.faiss_factory,
                )
        except Exception as error:
            raise IndexFormatError(
                f"a view checkpoint in {self.path} cannot be read ({error}); "
                f"rebuild it from the database with: lede repair --index {self.path}"
            ) from None
        records = list(self.store.all_chunk_records())
        live = np.array([r.rowid for r in records], dtype=np.int64)
        self.catalog.add(records)
        by_rowid = {r.rowid: r for r in records}
        for rowid in set(self.lexical.doc_ids) - set(live.tolist()):
            self.lexical.delete(rowid)
        for rowid in live.tolist():
            if rowid not in self.lexical:
                self.lexical.add(rowid, self._lexical_text(by_rowid[rowid]))
        stale = np.setdiff1d(self.dense.live_ids(), live)
        self.dense.delete(stale)
        missing = [r for r in live.tolist() if r not in self.dense]
        self._add_dense(missing)
        self.seq = seq
        self._checkpoint_seq = min(
            lexical_file[1] if lexical_file else -1, dense_file[1] if dense_file else -1
        )
        self.refresh()

    def _lexical_text(self, record: ChunkRecord) -> str:
        if self.manifest.settings.bm25_title and record.title:
            return f"{record.title}\n{record.text}"
        return record.text

    def _add_dense(self, rowids: Sequence[int]) -> None:
        if rowids and not self.dense.is_trained:
            self.dense.train(self._training_sample(rowids, self.dense))
        for offset in range(0, len(rowids), 4096):
            batch = list(rowids[offset : offset + 4096])
            self.dense.add(np.array(batch, dtype=np.int64), self.store.embeddings(batch))

    def refresh(self) -> int:
        """Apply changes committed by any process since this one last looked.

        Returns:
            The number of change-log entries applied.
        """
        if self.store.last_seq() == self.seq:
            return 0
        changes = self.store.changes_since(self.seq)
        if not changes:
            return 0
        deleted = {c.chunk_rowid for c in changes if c.op == "del"}
        added = [c.chunk_rowid for c in changes if c.op == "add" and c.chunk_rowid not in deleted]
        records = self.store.chunk_records(added)
        present = [r for r in added if r in records]  # rows deleted meanwhile are skipped
        embeddings = self.store.embeddings(present) if present else None
        with self._views_lock.writing():
            for rowid in deleted:
                self.lexical.delete(rowid)
            self.dense.delete(np.fromiter(deleted, dtype=np.int64, count=len(deleted)))
            self.catalog.delete(deleted)
            for rowid in present:
                self.lexical.add(rowid, self._lexical_text(records[rowid]))
            if embeddings is not None:
                self.dense.add(np.array(present, dtype=np.int64), embeddings)
            self.catalog.add([records[r] for r in present])
            self.seq = changes[-1].seq
        return len(changes)

    def checkpoint_due(self) -> bool:
        """True once the change log since the last checkpoint is long enough to be worth
        rewriting the view files: 1,000 changes or a tenth of the index, whichever is more.

        Below that, opening the index replays the log (cheap), so a small write never pays
        for rewriting a large index.
        """
        if self.dense.factory_due():
            return True  # the "auto" factory moves to another size tier
        if self._checkpoint_seq < 0:
            return self.seq > 0
        pending = self.seq - self._checkpoint_seq
        return pending >= max(1000, self.lexical.doc_count // 10)

    def checkpoint(self) -> None:
        """Write both views to files (atomically) and drop older checkpoints.

        Call while holding the write lock; `lede index` and the service's writer do.
        """
        if self.dense.tombstones > max(1000, self.dense.ntotal // 5) or self.dense.factory_due():
            self._rebuild_dense()
        with self._views_lock.reading():
            seq = self.seq
            lexical_bytes = self.lexical.to_bytes()
            dense_bytes = self.dense.to_bytes()
        try:
            atomic_write(self.path / f"bm25-{seq:012d}.npz", lexical_bytes)
            atomic_write(self.path / f"dense-{seq:012d}.faiss", dense_bytes)
        except OSError as error:
            if not is_storage_failure(error):
                raise
            raise StorageError(
                f"cannot checkpoint the views of {self.path}: {error} (no space left on the "
                "device or a failing disk); the database holds every committed article and "
                "the views are rebuilt from it on open"
            ) from error
        for candidate in self.path.iterdir():
            match = _CHECKPOINT.match(candidate.name)
            if match and int(match.group(2)) != seq:
                candidate.unlink(missing_ok=True)
        self._checkpoint_seq = seq
        logger.info("checkpointed views of %s at seq %d", self.path, seq)

    def _training_sample(self, rowids: Sequence[int], dense: DenseIndex) -> np.ndarray:
        """Stored embeddings of enough of these chunks to train `dense`, drawn evenly."""
        size = max(100_000, dense.training_size)
        step = max(1, len(rowids) // size)
        return self.store.embeddings(list(rowids[::step]))

    def _rebuild_dense(self) -> None:
        """Rebuild the dense view from SQLite: drops tombstones and, with the "auto" factory,
        moves to the tier that fits the index's size."""
        with self._views_lock.reading():
            live = self.dense.live_ids().tolist()
        fresh = DenseIndex(
            self.manifest.model.dimension,
            self.manifest.settings.faiss_factory,
            expected_size=len(live),
        )
        if live and not fresh.is_trained:
            fresh.train(self._training_sample(live, fresh))
        logger.info("rebuilding the dense view of %s as %s", self.path, fresh.factory)
        for offset in range(0, len(live), 4096):
            batch = live[offset : offset + 4096]
            fresh.add(np.array(batch, dtype=np.int64), self.store.embeddings(batch))
        with self._views_lock.writing():
            self.dense = fresh

    def repair(self) -> None:
        """Rebuild every view from SQLite and checkpoint it (the `lede repair` command)."""
        for candidate in self.path.iterdir():
            if _CHECKPOINT.match(candidate.name):
                candidate.unlink()
        with self._views_lock.writing():
            self.catalog = Catalog()
            self.lexical = LexicalIndex(self.analyzer, self.manifest.settings.bm25)
            self.dense = DenseIndex(
                self.manifest.model.dimension,
                self.manifest.settings.faiss_factory,
                expected_size=self.store.counts()["chunks"],
            )
        self._load_views()
        self.checkpoint()

    # --- writes ---------------------------------------------------------------------------

    @contextmanager
    def writing(self, timeout: float = 60.0) -> Iterator[None]:
        """Hold the index's cross-process write lock, starting from the latest state."""
        with WriteLock(self.path, timeout):
            self.refresh()
            yield

    def add(
        self,
        articles: Iterable[Article],
        *,
        batch_size: int = 512,
        progress: bool | None = None,
        on_batch: Callable[[WriteReport], None] | None = None,
        checkpoint: bool = True,
        lock_timeout: float = 60.0,
        total: int | None = None,
    ) -> WriteReport:
        """Add new articles, update changed ones, skip unchanged ones (by content hash).

        Takes the write lock. Each batch is one SQLite transaction; a batch is either
        entirely stored or not at all. `progress` (None: on a terminal) draws a bar, against
        `total` articles when the caller knows about how many there are.
        """
        report = WriteReport()
        bar = IndexProgress(total, show=progress)
        try:
            self._add(articles, report, batch_size, bar, on_batch, checkpoint, lock_timeout)
        except StorageError as error:
            committed = report.added + report.updated
            raise StorageError(
                f"{error} ({committed} new or changed articles of this run were committed "
                "before it; run the same command again once there is space: unchanged "
                "articles are skipped)"
            ) from error
        finally:
            bar.close()
        return report

    def _add(
        self,
        articles: Iterable[Article],
        report: WriteReport,
        batch_size: int,
        bar: IndexProgress,
        on_batch: Callable[[WriteReport], None] | None,
        checkpoint: bool,
        lock_timeout: float,
    ) -> None:
        with self.writing(lock_timeout):
            batch: list[Article] = []
            for article in articles:
                batch.append(article)
                if len(batch) >= batch_size:
                    self._write_batch(batch, report, bar)
                    bar.articles(len(batch))
                    batch = []
                    if on_batch:
                        on_batch(report)
            if batch:
                self._write_batch(batch, report, bar)
                bar.articles(len(batch))
            if checkpoint and self.checkpoint_due():
                self.checkpoint()

    def _write_batch(
        self, articles: list[Article], report: WriteReport, bar: IndexProgress | None = None
    ) -> None:
        ids = [a.id for a in articles]
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise InvalidArticleError(f"article id {duplicate!r} appears twice in one batch")
        stored = self.store.content_hashes(ids)
        chunker: Chunker | None = None
        writes: list[tuple[Article, str, list[Any], list[str], list[str]]] = []
        for article in articles:
            content_hash = article.content_hash()
            if stored.get(article.id) == content_hash:
                report.unchanged += 1
                continue
            if chunker is None:
                chunker = Chunker(self.embedder, self.manifest.settings.chunker)
            chunks = chunker.chunk(article)
            inputs = chunker.embedding_inputs(article, chunks)
            writes.append((article, content_hash, chunks, inputs, [_input_hash(t) for t in inputs]))
            if article.id in stored:
                report.updated += 1
            else:
                report.added += 1
        if not writes:
            return
        known = self.store.embeddings_by_input([w[0].id for w in writes if w[0].id in stored])
        todo: dict[str, str] = {}
        for _, _, _, inputs, hashes in writes:
            for text, input_hash in zip(inputs, hashes, strict=True):
                if input_hash not in known:
                    todo.setdefault(input_hash, text)
        if todo:
            texts = list(todo.values())
            parts = []
            for start in range(0, len(texts), EMBED_SLICE):
                parts.append(self.embedder.embed(texts[start : start + EMBED_SLICE]))
                if bar is not None:
                    bar.chunks(len(parts[-1]), len(articles), len(texts))
            vectors = np.concatenate(parts)
            known.update(zip(todo, vectors, strict=True))
            report.embedded += len(todo)
        upserts = []
        for article, content_hash, chunks, _, hashes in writes:
            matrix = np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, 1))
            upserts.append(ArticleWrite(article, content_hash, chunks, hashes, matrix))
            report.chunks += len(chunks)
        self.store.write(upserts)
        self.refresh()

    def delete(self, article_ids: Sequence[str], *, lock_timeout: float = 60.0) -> int:
        """Delete articles from SQLite and every view; returns how many existed."""
        with self.writing(lock_timeout):
            deleted = self.store.write([], deletes=list(article_ids))
            self.refresh()
        return deleted

    # --- reads ----------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A consistent snapshot of the views for the duration of one query."""
        with self._views_lock.reading():
            yield

    def filter_mask(self, filters: Filters | None) -> np.ndarray | None:
        return self.catalog.mask(filters)

    def info(self) -> dict[str, Any]:
        sizes = {p.name: p.stat().st_size for p in sorted(self.path.iterdir()) if p.is_file()}
        return {
            "path": str(self.path),
            "manifest": self.manifest.to_json(),
            "counts": self.store.counts(),
            "views": {
                "seq": self.seq,
                "checkpoint_seq": self._checkpoint_seq,
                "bm25_documents": self.lexical.doc_count,
                "bm25_terms": len(self.lexical.vocabulary),
                "dense_vectors": self.dense.ntotal,
                "dense_tombstones": self.dense.tombstones,
            },
            "files": sizes,
            "total_bytes": sum(sizes.values()),
        }
