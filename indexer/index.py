"""`LedeIndex`: one index directory, its SQLite source of truth and its derived views.

Writes go to SQLite first (one transaction per batch, every chunk change logged); the BM25
view, the FAISS view and the filter catalog then follow the change log. The views are
checkpointed to files written atomically; on open they are reconciled with SQLite, so a
crash at any point loses no committed write and never leaves an unreadable index.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np

from lede.indexer.encoders.embedder import Embedder, embedder_for
from lede.indexer.encoders.tokenizer import TokenCounter
from lede.indexer.errors import IndexFormatError, StorageError
from lede.indexer.files import WriteLock, atomic_write
from lede.indexer.filters import Catalog
from lede.indexer.ingest import (
    EmbeddedBatch,
    EmbeddingWrites,
)
from lede.indexer.manifest import (
    IndexSettings,
    Manifest,
    ModelInfo,
    read_manifest,
    write_manifest,
)
from lede.indexer.models import Article, ChunkRecord
from lede.indexer.ranked import RankedList
from lede.indexer.rwlock import ReadWriteLock
from lede.indexer.searchable import ChunkKey, Retrieval, RetrievalRequest
from lede.indexer.store import ArticleWrite, Store, is_storage_failure
from lede.indexer.text_analysis import Analyzer
from lede.indexer.views.contract import (
    ChunkRows,
    CorpusStatistics,
    Resizable,
    Trainable,
    View,
    ViewQuery,
    ViewSpec,
    as_matching,
    ranks_all,
    view_types,
)

logger = logging.getLogger(__name__)

DATABASE_NAME = "lede.sqlite"
ADD_SLICE = 4096  # chunks per view add when a view is rebuilt or reconciled from SQLite
_CHECKPOINT = re.compile(r"^([a-z0-9_]+)-(\d+)\.([a-z0-9]+)$")

# A query with much lexical work encodes here while the calling thread searches the lexical
# views; with little, the hand-over costs more than it hides (decision 26). Threads start on
# first use; more than one so that concurrent requests do not queue behind each other.
QUERY_ENCODING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lede-query-encode")
OVERLAP_MIN_POSTINGS = 50_000

V = TypeVar("V")


def check_model(path: Path, manifest: Manifest, embedder: Embedder) -> None:
    """Refuse an embedder other than the one the index at `path` was built with."""
    expected = manifest.model
    if embedder.name != expected.name or embedder.dimension != expected.dimension:
        raise IndexFormatError(
            f"{path} was built with {expected.name!r} ({expected.dimension}-d); "
            f"got {embedder.name!r} ({embedder.dimension}-d). Use the same model or "
            "index into a new directory"
        )
    if embedder.revision != expected.revision:
        raise IndexFormatError(
            f"{path} was built with revision {expected.revision} of {expected.name!r}, "
            f"but revision {embedder.revision} is installed; rebuild the index"
        )


class LedeIndex(EmbeddingWrites):
    """An open index directory. Use `LedeIndex.open` or `LedeIndex.create`.

    The first implementation of `SearchableIndex` (searchable.py): its views are held by
    name in `views`, in the order of `view_types()`.
    """

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        store: Store,
        embedder: Embedder | None,
        *,
        device: str = "cpu",
        embed_batch_size: int = 64,
    ):
        self.path = path
        self.manifest = manifest
        self.store = store
        self._embedder = embedder
        self._device, self._embed_batch_size = device, embed_batch_size
        settings = manifest.settings
        self.analyzer = Analyzer(settings.analyzer)
        self._views_lock = ReadWriteLock()
        self.catalog = Catalog()
        self._spec = ViewSpec(manifest, self.analyzer, self.view_templates())
        self.views: dict[str, View] = {
            name: kind.create(self._spec) for name, kind in view_types().items()
        }
        self.seq = 0
        self._checkpoint_seq = -1
        self._embedder_checked = False
        self._fresh_vectors: dict[int, np.ndarray] = {}  # the write in progress (write_prepared)

    # --- opening --------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        settings: IndexSettings | None = None,
        device: str = "cpu",
        embed_batch_size: int = 64,
    ) -> Self:
        """Create a new index directory (or open it if it exists with the same model).

        `device` ("cpu", "cuda" or "auto") and `embed_batch_size` configure the embedder the
        index builds when none is given.
        """
        path = Path(path)
        options: dict[str, Any] = {"device": device, "embed_batch_size": embed_batch_size}
        if (path / "manifest.json").exists():
            return cls.open(path, embedder=embedder, model=model, **options)
        if path.exists() and any(path.iterdir()):
            raise IndexFormatError(f"{path} exists, is not empty and is not a Lede index")
        embedder = embedder or embedder_for(
            model or "all-MiniLM-L6-v2", device=device, batch_size=embed_batch_size
        )
        settings = settings or IndexSettings()
        info = ModelInfo(embedder.name, embedder.dimension, embedder.revision)
        path.mkdir(parents=True, exist_ok=True)
        store = Store(path / DATABASE_NAME)
        store.create_schema()
        manifest = Manifest.new(info, settings)
        write_manifest(path, manifest)
        index = cls(path, manifest, store, embedder, **options)
        index._embedder_checked = True
        index._load_views()
        return index

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        device: str = "cpu",
        embed_batch_size: int = 64,
    ) -> Self:
        """Open an existing index; refuses a model other than the one it was built with."""
        path = Path(path)
        manifest = read_manifest(path)
        if embedder is None:
            embedder = embedder_for(
                model or manifest.model.name, device=device, batch_size=embed_batch_size
            )
        if embedder.name != manifest.model.name and model is not None:
            raise IndexFormatError(
                f"{path} was built with model {manifest.model.name!r}, not {embedder.name!r}; "
                "use the same --model or index into a new directory"
            )
        store = Store(path / DATABASE_NAME)
        index = cls(
            path, manifest, store, embedder, device=device, embed_batch_size=embed_batch_size
        )
        index._load_views()
        return index

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_embedder(self) -> Embedder:
        return embedder_for(
            self.manifest.model.name, device=self._device, batch_size=self._embed_batch_size
        )

    @property
    def embedder(self) -> Embedder:
        """The index's embedding model, checked against the manifest on first use."""
        if self._embedder is None:
            self._embedder = self._new_embedder()
        if not self._embedder_checked:
            check_model(self.path, self.manifest, self._embedder)
            self._embedder_checked = True
        return self._embedder

    # --- views ----------------------------------------------------------------------------

    @property
    def view_names(self) -> tuple[str, ...]:
        return tuple(self.views)

    def view(self, name: str, kind: type[V]) -> V:
        """The view called `name`, checked to be a `kind` (for code that needs its engine)."""
        found = self.views[name]
        if not isinstance(found, kind):
            raise TypeError(f"view {name!r} is a {type(found).__name__}, not a {kind.__name__}")
        return found

    def _checkpoints(self) -> dict[str, tuple[int, Path]]:
        """The newest checkpoint file of each registered view."""
        found: dict[str, tuple[int, Path]] = {}
        for candidate in self.path.iterdir():
            match = _CHECKPOINT.match(candidate.name)
            if match and match.group(1) in self.views:
                kind = self.views[match.group(1)]
                if match.group(3) == kind.suffix:
                    seq = int(match.group(2))
                    if seq > found.get(match.group(1), (-1, candidate))[0]:
                        found[match.group(1)] = (seq, candidate)
        return found

    def _load_views(self) -> None:
        """Load checkpoints, then reconcile them with SQLite's live chunks."""
        seq = self.store.last_seq()  # read first: later changes are replayed by refresh()
        files = self._checkpoints()
        try:
            for name, (_, file) in files.items():
                self.views[name] = type(self.views[name]).from_bytes(file.read_bytes(), self._spec)
        except Exception as error:
            raise IndexFormatError(
                f"a view checkpoint in {self.path} cannot be read ({error}); "
                f"rebuild it from the database with: lede repair --index {self.path}"
            ) from None
        records = list(self.store.all_chunk_records())
        live = np.array([r.rowid for r in records], dtype=np.int64)
        self.catalog.add(records)
        by_rowid = {r.rowid: r for r in records}
        for view in self.views.values():
            view.delete(np.setdiff1d(view.live_ids(), live))
            missing = [rowid for rowid in live.tolist() if rowid not in view]
            self._fill(view, missing, by_rowid)
        self.seq = seq
        self._checkpoint_seq = min((files[name][0] if name in files else -1) for name in self.views)
        self.refresh()

    def _lexical_text(self, record: ChunkRecord) -> str:
        if self.manifest.settings.bm25_title and record.title:
            return f"{record.title}\n{record.text}"
        return record.text

    def _rows(
        self, view: View, rowids: Sequence[int], records: dict[int, ChunkRecord] | None
    ) -> ChunkRows:
        """The inputs `view` reads for these chunks, from SQLite (records when given)."""
        texts = None
        if "text" in view.inputs:
            found = records if records is not None else self.store.chunk_records(rowids)
            texts = [self._lexical_text(found[rowid]) for rowid in rowids]
        vectors = self.store.embeddings(list(rowids)) if "vector" in view.inputs else None
        return ChunkRows(np.array(rowids, dtype=np.int64), texts, vectors)

    def _fill(
        self, view: View, rowids: Sequence[int], records: dict[int, ChunkRecord] | None = None
    ) -> None:
        """Add these stored chunks to `view`, training it first on a sample when it must."""
        if rowids and isinstance(view, Trainable) and not view.is_trained:
            view.train(self._training_sample(rowids, view))
        if "text" in view.inputs and "vector" not in view.inputs:
            step = len(rowids) or 1  # texts cost no database read when the records are here
        else:
            step = ADD_SLICE
        for offset in range(0, len(rowids), step):
            view.add(self._rows(view, rowids[offset : offset + step], records))

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
        needs_vectors = any("vector" in view.inputs for view in self.views.values())
        embeddings = self._embeddings(present) if present and needs_vectors else None
        rows = ChunkRows(
            np.array(present, dtype=np.int64),
            [self._lexical_text(records[rowid]) for rowid in present],
            embeddings,
        )
        gone = np.fromiter(deleted, dtype=np.int64, count=len(deleted))
        with self._views_lock.writing():
            for view in self.views.values():
                view.delete(gone)
            self.catalog.delete(deleted)
            if present:
                for view in self.views.values():
                    view.add(rows)
            self.catalog.add([records[r] for r in present])
            self.seq = changes[-1].seq
        return len(changes)

    def _embeddings(self, rowids: list[int]) -> np.ndarray:
        """These chunks' embeddings: from the write just committed, else from SQLite."""
        fresh = self._fresh_vectors
        if fresh and all(rowid in fresh for rowid in rowids):
            return np.stack([fresh[rowid] for rowid in rowids]).astype(np.float32, copy=False)
        return self.store.embeddings(rowids)

    def checkpoint_due(self) -> bool:
        """True once the change log since the last checkpoint is long enough to be worth
        rewriting the view files: 1,000 changes or a tenth of the index, whichever is more.

        Below that, opening the index replays the log (cheap), so a small write never pays
        for rewriting a large index.
        """
        if any(isinstance(v, Resizable) and v.resize_due() for v in self.views.values()):
            return True  # e.g. the "auto" FAISS factory moves to another size tier
        if self._checkpoint_seq < 0:
            return self.seq > 0
        pending = self.seq - self._checkpoint_seq
        return pending >= max(1000, int(np.count_nonzero(self.catalog.live)) // 10)

    def checkpoint_if_due(self, lock_timeout: float = 60.0) -> None:
        """Checkpoint under the write lock when `checkpoint_due()` says so."""
        with self.writing(lock_timeout):
            if self.checkpoint_due():
                self.checkpoint()

    def checkpoint(self) -> None:
        """Write every view to a file (atomically) and drop older checkpoints.

        Call while holding the write lock; `lede index` and the service's writer do.
        """
        for name, view in list(self.views.items()):
            if isinstance(view, Resizable) and view.rebuild_due():
                self._rebuild(name)
        with self._views_lock.reading():
            seq = self.seq
            blobs = {
                f"{name}-{seq:012d}.{view.suffix}": view.to_bytes()
                for name, view in self.views.items()
            }
        try:
            for file_name, data in blobs.items():
                atomic_write(self.path / file_name, data)
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

    def _training_sample(self, rowids: Sequence[int], view: Trainable) -> np.ndarray:
        """Stored embeddings of enough of these chunks to train `view`, drawn evenly."""
        size = max(100_000, view.training_size)
        step = max(1, len(rowids) // size)
        return self.store.embeddings(list(rowids[::step]))

    def _rebuild(self, name: str) -> None:
        """Rebuild a view from SQLite: drops tombstones and lets it take the form that fits
        the index's size (the "auto" FAISS factory's tier)."""
        with self._views_lock.reading():
            live = self.views[name].live_ids().tolist()
        fresh = type(self.views[name]).create(self._spec, expected_size=len(live))
        logger.info("rebuilding the %s view of %s (%s)", name, self.path, fresh.stats())
        self._fill(fresh, live)
        with self._views_lock.writing():
            self.views[name] = fresh

    @classmethod
    def repair_directory(cls, path: Path) -> dict[str, int]:
        """Rebuild the views of the index at `path` from SQLite, without reading them first
        (they may be what is damaged); returns the article and chunk counts."""
        path = Path(path)
        index = cls(path, read_manifest(path), Store(path / DATABASE_NAME), None)
        try:
            with index.writing():
                index.repair()
            return index.store.counts()
        finally:
            index.close()

    def repair(self) -> None:
        """Rebuild every view from SQLite and checkpoint it (the `lede repair` command)."""
        for candidate in self.path.iterdir():
            if _CHECKPOINT.match(candidate.name):
                candidate.unlink()
        size = self.store.counts()["chunks"]
        with self._views_lock.writing():
            self.catalog = Catalog()
            self.views = {
                name: kind.create(self._spec, expected_size=size)
                for name, kind in view_types().items()
            }
        self._load_views()
        self.checkpoint()

    # --- writes ---------------------------------------------------------------------------

    @contextmanager
    def writing(self, timeout: float = 60.0) -> Iterator[None]:
        """Hold the index's cross-process write lock, starting from the latest state."""
        with WriteLock(self.path, timeout):
            self.refresh()
            yield

    def store_prepared(self, batch: EmbeddedBatch, lock_timeout: float) -> None:
        with self.writing(lock_timeout):
            self.write_prepared(batch)

    @property
    def tokens(self) -> TokenCounter:
        """The embedding model's tokenizer, for chunking (the model itself is not loaded)."""
        if self._embedder is None:
            self._embedder = self._new_embedder()
        return self._embedder

    def write_prepared(self, batch: EmbeddedBatch, rowids: Sequence[int] | None = None) -> None:
        """The write stage: store the batch in one transaction, then apply it to the views
        with its vectors from memory. Hold `writing()` around it.

        `rowids` gives the batch's chunks (article by article) their ids, when a sharded
        index assigns ids across its shards; else SQLite numbers them.
        """
        upserts = []
        offset = 0
        for item in batch.articles:
            hashes = item.input_hashes
            matrix = np.stack([batch.vectors[h] for h in hashes]) if hashes else np.zeros((0, 1))
            ids = None if rowids is None else rowids[offset : offset + len(hashes)]
            offset += len(hashes)
            upserts.append(
                ArticleWrite(item.article, item.content_hash, item.chunks, hashes, matrix, ids)
            )
        written = self.store.write(upserts)
        vectors = (batch.vectors[h] for item in batch.articles for h in item.input_hashes)
        self._fresh_vectors = dict(zip(written.added, vectors, strict=True))
        try:
            self.refresh()
        finally:
            self._fresh_vectors = {}

    def view_templates(self) -> dict[str, bytes]:
        """The trained, empty states its views start from instead of training their own, by
        view name: none for an index of its own (a shard has its sharded index's:
        `shards/shard.py`)."""
        return {}

    def content_hashes(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The stored articles' content hashes, by id (absent ids are left out)."""
        return self.store.content_hashes(article_ids)

    def embeddings_by_input(self, article_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The embeddings these articles' chunks hold, by the hash of their input."""
        return self.store.embeddings_by_input(article_ids)

    def delete(self, article_ids: Sequence[str], *, lock_timeout: float = 60.0) -> list[str]:
        """Delete articles from SQLite and every view; returns the ids that were there."""
        with self.writing(lock_timeout):
            present = set(self.store.content_hashes(list(article_ids)))
            found = [
                article_id for article_id in dict.fromkeys(article_ids) if article_id in present
            ]
            self.store.write([], deletes=found)
            self.refresh()
        return found

    # --- reads (the SearchableIndex contract) ----------------------------------------------

    def retrieve(self, request: RetrievalRequest) -> Retrieval:
        """Search the named views in one snapshot, after applying every committed write.

        A query whose lexical views walk many postings is encoded on another thread meanwhile
        (decision 26).
        """
        self.refresh()
        views = [self.views[name] for name in request.views]
        query = ViewQuery(request.query, request.query_vector, request.ef_search, request.nprobe)
        encoding: Future[np.ndarray] | None = None
        if query.vector is None and any(v.query_input == "vector" for v in views):
            lexical = [m for m in map(as_matching, views) if m is not None]
            if lexical and sum(m.cost(query) for m in lexical) >= OVERLAP_MIN_POSTINGS:
                encoding = QUERY_ENCODING.submit(self.encode_query, request.query)
            else:
                query = replace(query, vector=self.encode_query(request.query))
        statistics = request.statistics or {}
        lists: dict[str, RankedList] = {}
        with self._views_lock.reading():
            mask = self.catalog.mask(request.filters)
            for name, view in zip(request.views, views, strict=True):
                if view.query_input == "vector" and encoding is not None:
                    query = replace(query, vector=encoding.result())
                    encoding = None
                lists[name] = view.search(
                    replace(query, statistics=statistics.get(name)), request.depth, mask
                )
            retrieval = Retrieval(lists)
            if request.count != "none" or request.facets:
                self._count(retrieval, request, views, query, mask)
            if request.keys:
                retrieval.keys = self._keys(lists)
        return retrieval

    def _count(
        self,
        retrieval: Retrieval,
        request: RetrievalRequest,
        views: list[View],
        query: ViewQuery,
        mask: np.ndarray | None,
    ) -> None:
        """What the query matches: every allowed chunk when a view ranks them all, else the
        allowed chunks any view matched (counted by the view's own pass when it is alone)."""
        only = retrieval.lists[request.views[0]] if len(views) == 1 else None
        if request.count == "chunks" and not request.facets and only and only.matched is not None:
            retrieval.total = only.matched
            return
        allowed = self.catalog.allowed(mask)
        if any(ranks_all(view) for view in views):
            matching = allowed  # no view's matches need marking (1.6 ms at 1M chunks)
        else:
            union = np.zeros(len(allowed), dtype=bool)
            for view in views:
                lexical_view = as_matching(view)
                assert lexical_view is not None
                found = lexical_view.matching(query)
                size = min(len(found), len(allowed))
                union[:size] |= found[:size]
            matching = union & allowed
        if request.count == "articles":
            retrieval.total = self.catalog.article_count(matching)
        elif request.count == "chunks":
            retrieval.total = int(np.count_nonzero(matching))
        if request.facets:
            retrieval.facets = self.catalog.facet_counts(matching, request.facets)

    def _keys(self, lists: dict[str, RankedList]) -> dict[int, ChunkKey]:
        ids = list(dict.fromkeys(doc for ranked in lists.values() for doc in ranked.ids))
        articles = self.catalog.article_codes(ids).tolist()
        published = self.catalog.published(ids).tolist()
        return {
            doc: ChunkKey(article, date)
            for doc, article, date in zip(ids, articles, published, strict=True)
        }

    def statistics(self, query: str, views: Sequence[str]) -> dict[str, CorpusStatistics]:
        """The corpus statistics each named view scores `query` with, from the latest
        committed state (views that need none are left out): what a sharded index sums over
        its shards before it searches them."""
        self.refresh()
        found: dict[str, CorpusStatistics] = {}
        with self._views_lock.reading():
            for name in views:
                view = as_matching(self.views[name])
                if view is not None:
                    found[name] = view.statistics(ViewQuery(query))
        return found

    def records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return self.store.chunk_records(ids)

    def encode_query(self, query: str) -> np.ndarray:
        vectors: np.ndarray = self.embedder.embed([query])
        return vectors

    def analyze(self, text: str) -> list[str]:
        return self.analyzer(text)

    def article(self, article_id: str) -> tuple[Article, list[ChunkRecord]] | None:
        """A stored article with its chunks, or None."""
        return self.store.article_with_chunks(article_id)

    def facet_values(self) -> dict[str, list[str]]:
        """The sources and tags present in the index."""
        return self.store.facets()

    def warm_up(self) -> None:
        """Load the embedding model, and the compiled BM25 loop if this index needs it, now.
        (FAISS searches on one thread, set per search: `dense.one_faiss_thread`, decision 14.)"""
        self.embedder.embed(["warm up"])
        self.warm_up_views()

    def warm_up_views(self) -> None:
        """`warm_up` without the model: what a shard that never encodes a query needs."""
        with self.reading():
            for view in self.views.values():
                view.warm_up()

    def stats(self) -> dict[str, Any]:
        """Article and chunk counts and the embedding model's name."""
        return {**self.store.counts(), "model": self.manifest.model.name}

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A consistent snapshot of the views for the duration of a block."""
        with self._views_lock.reading():
            yield

    def info(self) -> dict[str, Any]:
        sizes = {p.name: p.stat().st_size for p in sorted(self.path.iterdir()) if p.is_file()}
        views: dict[str, Any] = {"seq": self.seq, "checkpoint_seq": self._checkpoint_seq}
        for name, view in self.views.items():
            views.update({f"{name}_{key}": value for key, value in view.stats().items()})
        return {
            "path": str(self.path),
            "manifest": self.manifest.to_json(),
            "counts": self.store.counts(),
            "views": views,
            "files": sizes,
            "total_bytes": sum(sizes.values()),
        }
