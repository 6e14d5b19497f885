"""SQLite, the source of truth: articles, chunks with embeddings, and the change log."""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lede.indexer.errors import StorageError
from lede.indexer.models import Article, Chunk, ChunkRecord, parse_article

SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    url TEXT,
    published_at TEXT,
    published_ts REAL,
    source TEXT,
    author TEXT,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id TEXT NOT NULL UNIQUE,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    embedding BLOB NOT NULL,
    sentences TEXT
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('add', 'del')),
    chunk_rowid INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    op: str
    chunk_rowid: int


@dataclass(frozen=True, slots=True)
class ArticleWrite:
    """One article to upsert, with its chunks and their embeddings."""

    article: Article
    content_hash: str
    chunks: list[Chunk]
    input_hashes: list[str]
    embeddings: np.ndarray
    rowids: Sequence[int] | None = None  # the chunks' global ids when a sharded index assigns them


@dataclass(frozen=True, slots=True)
class StoreWrite:
    """What one write transaction did: articles deleted, and the row ids of the chunks it
    added, in the order of the upserts' chunks."""

    deleted: int
    added: list[int]


_RECORD_COLUMNS = (
    'c.rowid, c.chunk_id, c.article_id, c.ordinal, c.start, c."end", c.text, a.title, a.url, '
    "a.published_at, a.published_ts, a.source, a.author, a.tags, c.sentences"
)


def _record(row: sqlite3.Row | tuple[object, ...]) -> ChunkRecord:
    values = list(row)
    values[-2] = tuple(json.loads(str(values[-2])))
    return ChunkRecord(*values)  # type: ignore[arg-type]


STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def is_storage_failure(error: BaseException) -> bool:
    """A write that storage refused: full disk, quota, file-size limit or I/O error, as SQLite
    (SQLITE_FULL, SQLITE_IOERR_*) or the OS reports it."""
    if isinstance(error, sqlite3.OperationalError):
        name = getattr(error, "sqlite_errorname", "")
        return name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR")
    return isinstance(error, OSError) and error.errno in STORAGE_ERRNOS


class Store:
    """A connection to `lede.sqlite` in WAL mode; safe to share between threads."""

    def __init__(self, path: Path):
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._add_sentences_column()

    def create_schema(self) -> None:
        with self._lock:
            self._conn.executescript(SCHEMA)

    def _add_sentences_column(self) -> None:
        """Indexes stored before chunks kept their sentence spans gain the (empty) column;
        their chunks' sentences are found again when they are highlighted."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(chunks)")}
        if columns and "sentences" not in columns:
            self._conn.execute("ALTER TABLE chunks ADD COLUMN sentences TEXT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole or rolled back whole (also on a full disk)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as error:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if is_storage_failure(error):
                    raise StorageError(
                        f"cannot write {self.path}: {error} (no space left on the device, a "
                        "quota or file-size limit, or a failing disk); this transaction was "
                        "rolled back and everything committed before it is intact"
                    ) from error
                raise

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def _query_in(self, sql: str, values: Iterable[object]) -> list[tuple[object, ...]]:
        """`sql` with `IN ({marks})` run over the values 500 at a time (SQLite's limit on
        parameters is per statement)."""
        rows: list[tuple[object, ...]] = []
        for batch in _batches(values if isinstance(values, Sequence) else list(values), 500):
            rows.extend(self._query(sql.format(marks=",".join("?" * len(batch))), batch))
        return rows

    # --- reads -----------------------------------------------------------------------------

    def content_hashes(self, article_ids: Sequence[str]) -> dict[str, str]:
        rows = self._query_in(
            "SELECT id, content_hash FROM articles WHERE id IN ({marks})", article_ids
        )
        return {str(i): str(h) for i, h in rows}

    def embeddings_by_input(self, article_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings of these articles' chunks, keyed by the hash of their input."""
        rows = self._query_in(
            "SELECT input_hash, embedding FROM chunks WHERE article_id IN ({marks})", article_ids
        )
        return {
            str(input_hash): np.frombuffer(blob, dtype=np.float32)  # type: ignore[call-overload]
            for input_hash, blob in rows
        }

    def get_article(self, article_id: str) -> Article | None:
        rows = self._query(
            "SELECT id, title, text, url, published_at, source, author, tags, metadata "
            "FROM articles WHERE id = ?",
            (article_id,),
        )
        if not rows:
            return None
        row = rows[0]
        keys = ("id", "title", "text", "url", "published_at", "source", "author")
        data: dict[str, object] = dict(zip(keys, row[:7], strict=True))
        data["tags"] = json.loads(str(row[7]))
        data["metadata"] = json.loads(str(row[8]))
        return parse_article(data)

    def article_chunks(self, article_id: str) -> list[ChunkRecord]:
        rows = self._query(
            f"SELECT {_RECORD_COLUMNS} FROM chunks c JOIN articles a ON a.id = c.article_id "
            "WHERE c.article_id = ? ORDER BY c.ordinal",
            (article_id,),
        )
        return [_record(row) for row in rows]

    def article_with_chunks(self, article_id: str) -> tuple[Article, list[ChunkRecord]] | None:
        """The article and its chunks from one snapshot (never two versions mixed)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                article = self.get_article(article_id)
                chunks = self.article_chunks(article_id) if article else []
            finally:
                self._conn.execute("COMMIT")
        return (article, chunks) if article else None

    def chunk_records(self, rowids: Iterable[int]) -> dict[int, ChunkRecord]:
        rows = self._query_in(
            f"SELECT {_RECORD_COLUMNS} FROM chunks c JOIN articles a ON a.id = c.article_id "
            "WHERE c.rowid IN ({marks})",
            rowids,
        )
        return {record.rowid: record for record in map(_record, rows)}

    def all_chunk_records(self) -> Iterator[ChunkRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM chunks c JOIN articles a ON a.id = c.article_id "
                "ORDER BY c.rowid"
            ).fetchall()
        for row in rows:
            yield _record(row)

    def embeddings(self, rowids: Sequence[int]) -> np.ndarray:
        """Embeddings of these chunks, in the order given."""
        rows = self._query_in(
            "SELECT rowid, embedding FROM chunks WHERE rowid IN ({marks})", rowids
        )
        by_rowid = {int(r): bytes(b) for r, b in rows}  # type: ignore[call-overload,arg-type]
        if not rowids:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(by_rowid[r], dtype=np.float32) for r in rowids])

    def live_rowids(self) -> np.ndarray:
        rows = self._query("SELECT rowid FROM chunks ORDER BY rowid")
        return np.array([r[0] for r in rows], dtype=np.int64)

    def next_rowid(self) -> int:
        """The row id AUTOINCREMENT gives the next chunk: one above any id ever used."""
        rows = self._query("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'")
        return int(str(rows[0][0])) + 1 if rows else 1

    def last_seq(self) -> int:
        rows = self._query("SELECT COALESCE(MAX(seq), 0) FROM changes")
        return int(str(rows[0][0]))

    def changes_since(self, seq: int) -> list[Change]:
        rows = self._query(
            "SELECT seq, op, chunk_rowid FROM changes WHERE seq > ? ORDER BY seq", (seq,)
        )
        return [Change(int(s), str(o), int(r)) for s, o, r in rows]  # type: ignore[call-overload]

    def counts(self) -> dict[str, int]:
        articles = self._query("SELECT COUNT(*) FROM articles")[0][0]
        chunks = self._query("SELECT COUNT(*) FROM chunks")[0][0]
        return {"articles": int(articles), "chunks": int(chunks)}  # type: ignore[call-overload]

    def facets(self) -> dict[str, list[str]]:
        """Distinct sources and tags of the stored articles, sorted."""
        sources = self._query(
            "SELECT DISTINCT source FROM articles WHERE source IS NOT NULL ORDER BY source"
        )
        tags = self._query(
            "SELECT DISTINCT value FROM articles, json_each(articles.tags) ORDER BY value"
        )
        return {"sources": [str(r[0]) for r in sources], "tags": [str(r[0]) for r in tags]}

    def article_ids(self) -> list[str]:
        return [str(r[0]) for r in self._query("SELECT id FROM articles ORDER BY id")]

    # --- writes ----------------------------------------------------------------------------

    def write(self, upserts: Sequence[ArticleWrite], deletes: Sequence[str] = ()) -> StoreWrite:
        """Apply upserts and deletes in one transaction, logging every chunk change."""
        deleted = 0
        added: list[int] = []
        with self._transaction() as conn:
            for article_id in deletes:
                self._drop_chunks(conn, article_id)
                deleted += conn.execute("DELETE FROM articles WHERE id = ?", (article_id,)).rowcount
            for item in upserts:
                self._drop_chunks(conn, item.article.id)
                self._upsert_article(conn, item)
                rowids = item.rowids if item.rowids is not None else [None] * len(item.chunks)
                for chunk, input_hash, vector, rowid in zip(
                    item.chunks, item.input_hashes, item.embeddings, rowids, strict=True
                ):
                    cursor = conn.execute(
                        'INSERT INTO chunks (rowid, chunk_id, article_id, ordinal, start, "end", '
                        "text, input_hash, embedding, sentences) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            rowid,
                            chunk.chunk_id,
                            chunk.article_id,
                            chunk.ordinal,
                            chunk.start,
                            chunk.end,
                            chunk.text,
                            input_hash,
                            np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
                            json.dumps(chunk.sentences, separators=(",", ":")),
                        ),
                    )
                    conn.execute(
                        "INSERT INTO changes (op, chunk_rowid) VALUES ('add', ?)",
                        (cursor.lastrowid,),
                    )
                    assert cursor.lastrowid is not None
                    added.append(cursor.lastrowid)
        return StoreWrite(deleted, added)

    @staticmethod
    def _drop_chunks(conn: sqlite3.Connection, article_id: str) -> None:
        rowids = [
            r[0]
            for r in conn.execute("SELECT rowid FROM chunks WHERE article_id = ?", (article_id,))
        ]
        conn.executemany(
            "INSERT INTO changes (op, chunk_rowid) VALUES ('del', ?)", [(r,) for r in rowids]
        )
        conn.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))

    @staticmethod
    def _upsert_article(conn: sqlite3.Connection, item: ArticleWrite) -> None:
        article = item.article
        conn.execute(
            "INSERT INTO articles (id, title, text, url, published_at, published_ts, source, "
            "author, tags, metadata, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET title=excluded.title, text=excluded.text, "
            "url=excluded.url, published_at=excluded.published_at, "
            "published_ts=excluded.published_ts, source=excluded.source, "
            "author=excluded.author, tags=excluded.tags, metadata=excluded.metadata, "
            "content_hash=excluded.content_hash",
            (
                article.id,
                article.title,
                article.text,
                article.url,
                article.published_iso,
                article.published_ts,
                article.source,
                article.author,
                json.dumps(list(article.tags)),
                json.dumps(article.metadata, default=str),
                item.content_hash,
            ),
        )


def _batches(items: Sequence[object], size: int) -> Iterator[list[object]]:
    for offset in range(0, len(items), size):
        yield list(items[offset : offset + size])
