"""`ShardedIndex`: one index split into shards that answers exactly as one index would.

A sharded directory holds `shards.json` (the layout: which shard owns an article, by a hash
of its id) and one complete index per shard (`shard-000/`, ...), each with its own
SQLite source of truth, views, write lock and change log. Results equal those of one index
of the same articles, hit for hit and score for score, because:

- row ids are global: a write numbers its chunks across shards as one index's SQLite
  would (one above the highest id any shard ever used, article by article);
- BM25 scores with the whole corpus's statistics (document count, total length, each query
  term's document frequency), gathered from every shard before the search round;
- every view breaks tied scores to the lower row id, at the cut too, so merging the
  shards' lists by (score descending, id ascending) gives one index's list;
- FAISS runs on one thread (`warm_up`), so a similarity does not move by an ulp;
- the FAISS size tier is the whole corpus's, and above Flat every shard starts from one
  quantizer trained on the sample one index would train on (`_choose_tier`): an approximate
  tier cannot be exact, but each shard probes the lists one index would and re-scores at least
  the candidates one index would, so recall@10 is at least one index's (decision 45).

In this process the shards are `ShardIndex` objects (`shard.py`: a `LedeIndex` with what
only a sharded index asks of a shard); `lede serve --ray` places each in
its own actor and scatters the same calls (the reference this class is for the cluster).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from lede.indexer.encoders.embedder import Embedder, embedder_for
from lede.indexer.encoders.tokenizer import TokenCounter
from lede.indexer.errors import IndexFormatError, ShardUnavailableError
from lede.indexer.files import WriteLock
from lede.indexer.index import check_model
from lede.indexer.ingest import (
    EmbeddedBatch,
    EmbeddingWrites,
)
from lede.indexer.manifest import IndexSettings, Manifest, read_manifest
from lede.indexer.models import Article, ChunkRecord
from lede.indexer.ranked import RankedList
from lede.indexer.searchable import ChunkKey, Retrieval, RetrievalRequest
from lede.indexer.shards.layout import ShardLayout, is_sharded, read_layout, write_layout
from lede.indexer.shards.shard import ShardIndex
from lede.indexer.text_analysis import Analyzer
from lede.indexer.views.contract import CorpusStatistics, view_types
from lede.indexer.views.dense import DenseView

logger = logging.getLogger(__name__)

ALL_FACET_VALUES = 1 << 30  # shards count every facet value; the merge keeps the top ones


T = TypeVar("T")


class Scatter(Protocol):
    """Runs one call on every shard; the results in shard order. With `partial`, a shard
    that is down gives None instead of raising `ShardUnavailableError`."""

    def __call__(
        self, call: Callable[[Shard], T], shards: Sequence[Shard], *, partial: bool = False
    ) -> list[Any]: ...


def _one_by_one(
    call: Callable[[Shard], T], shards: Sequence[Shard], *, partial: bool = False
) -> list[Any]:
    found: list[T | None] = []
    for shard in shards:
        try:
            found.append(call(shard))
        except ShardUnavailableError:
            if not partial:
                raise
            found.append(None)
    return found


class Shard(Protocol):
    """What a sharded index asks of each shard: a `ShardIndex` (`shard.py`) in this process,
    or a proxy of one in a Ray actor (`cluster/shards.py`). Writes take the shard's own write
    lock."""

    def statistics(self, query: str, views: Sequence[str]) -> dict[str, CorpusStatistics]: ...

    def retrieve(self, request: RetrievalRequest) -> Retrieval: ...

    def records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]: ...

    def article(self, article_id: str) -> tuple[Article, list[ChunkRecord]] | None: ...

    def facet_values(self) -> dict[str, list[str]]: ...

    def stats(self) -> dict[str, Any]: ...

    def info(self) -> dict[str, Any]: ...

    def warm_up(self) -> None: ...

    def content_hashes(self, article_ids: Sequence[str]) -> dict[str, str]: ...

    def embeddings_by_input(self, article_ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def next_rowid(self) -> int: ...

    def write_rows(
        self, batch: EmbeddedBatch, rowids: Sequence[int], lock_timeout: float = 60.0
    ) -> None: ...

    def delete(self, article_ids: Sequence[str], *, lock_timeout: float = 60.0) -> list[str]: ...

    def checkpoint_if_due(self, lock_timeout: float = 60.0) -> None: ...

    def checkpoint_now(self, lock_timeout: float = 60.0) -> None: ...

    def live_ids(self, view: str) -> np.ndarray: ...

    def stored_embeddings(self, ids: Sequence[int]) -> np.ndarray: ...

    def install_template(
        self, view: str, data: bytes | None, lock_timeout: float = 60.0
    ) -> None: ...

    def close(self) -> None: ...


class ShardedIndex(EmbeddingWrites):
    """An open sharded index directory. Use `ShardedIndex.create` or `ShardedIndex.open`.

    Implements `WritableIndex` (searchable.py) over its shards.
    """

    def __init__(
        self,
        path: Path,
        layout: ShardLayout,
        manifest: Manifest,
        shards: Sequence[Shard],
        embedder: Embedder,
        *,
        write_lock: Callable[[float], AbstractContextManager[object]] | None = None,
        scatter: Scatter | None = None,
    ):
        """
        Args:
            manifest: what every shard was built with (their model and settings).
            embedder: encodes queries and embeds new articles (checked against `manifest`).
            write_lock: one writer at a time across the shards (default: the directory's
                cross-process lock; a cluster passes its writer's own).
            scatter: runs one call on every shard and returns the results in shard order
                (default: one after the other; a cluster's replica calls them at once).
        """
        self.path = path
        self.layout = layout
        self.manifest = manifest
        self.shards = list(shards)
        self._embedder = embedder
        self._embedder_checked = False
        self.analyzer = Analyzer(manifest.settings.analyzer)
        self._write_lock = write_lock or (lambda timeout: WriteLock(self.path, timeout))
        self._query_inputs = {name: kind.query_input for name, kind in view_types().items()}
        self._scatter: Scatter = scatter or _one_by_one
        self.phases: dict[str, float] = {}  # the last retrieve's seconds per step

    # --- opening --------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        shards: int,
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        settings: IndexSettings | None = None,
        device: str = "cpu",
        embed_batch_size: int = 64,
    ) -> ShardedIndex:
        """Create a sharded index of `shards` shards (or open it, if it has that many)."""
        path = Path(path)
        options: dict[str, Any] = {"device": device, "embed_batch_size": embed_batch_size}
        if is_sharded(path):
            index = cls.open(path, embedder=embedder, model=model, **options)
            if index.layout.shards != shards:
                index.close()
                raise IndexFormatError(
                    f"{path} has {index.layout.shards} shards, not {shards}; give "
                    f"--shards {index.layout.shards} (or none) to add to it"
                )
            return index
        if (path / "manifest.json").exists():
            raise IndexFormatError(
                f"{path} is an index of one shard; index into a new directory to shard"
            )
        if path.exists() and any(path.iterdir()):
            raise IndexFormatError(f"{path} exists, is not empty and is not a Lede index")
        layout = ShardLayout.even(shards)
        embedder = embedder or embedder_for(
            model or "all-MiniLM-L6-v2", device=device, batch_size=embed_batch_size
        )
        path.mkdir(parents=True, exist_ok=True)
        opened = [
            ShardIndex.create(
                path / layout.shard_name(shard), embedder=embedder, settings=settings, **options
            )
            for shard in range(shards)
        ]
        write_layout(path, layout)  # last: a directory with a layout has every shard
        return cls(path, layout, opened[0].manifest, opened, embedder)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        device: str = "cpu",
        embed_batch_size: int = 64,
    ) -> ShardedIndex:
        """Open a sharded index; every shard must have been built with one model."""
        path = Path(path)
        layout = read_layout(path)
        folders = [path / layout.shard_name(shard) for shard in range(layout.shards)]
        for folder in folders:
            if not (folder / "manifest.json").exists():
                raise IndexFormatError(f"{path}: shard {folder.name} is missing")
        first = read_manifest(folders[0])
        embedder = embedder or embedder_for(
            model or first.model.name, device=device, batch_size=embed_batch_size
        )
        opened: list[ShardIndex] = []
        try:
            for folder in folders:
                index = ShardIndex.open(
                    folder,
                    embedder=embedder,
                    model=model,
                    device=device,
                    embed_batch_size=embed_batch_size,
                )
                opened.append(index)
                if index.manifest.model != first.model:
                    raise IndexFormatError(f"{path}: its shards were built with other models")
        except BaseException:
            for index in opened:
                index.close()
            raise
        return cls(path, layout, first, opened, embedder)

    def close(self) -> None:
        for shard in self.shards:
            shard.close()

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> Embedder:
        """The embedding model, checked against the shards' manifest on first use."""
        if not self._embedder_checked:
            check_model(self.path, self.manifest, self._embedder)
            self._embedder_checked = True
        return self._embedder

    @property
    def tokens(self) -> TokenCounter:
        """The model's tokenizer, for chunking (the embedder counts tokens without loading
        the model)."""
        return self._embedder

    # --- reads (the SearchableIndex contract) ----------------------------------------------

    @property
    def view_names(self) -> tuple[str, ...]:
        return tuple(view_types())

    def statistics(
        self, query: str, views: Sequence[str], *, partial: bool = False
    ) -> dict[str, CorpusStatistics]:
        """The corpus statistics of every shard (that answers, with `partial`), summed: the
        statistics round."""
        found = self._scatter(
            lambda shard: shard.statistics(query, views), self.shards, partial=partial
        )
        parts = [part for part in found if part is not None]
        names = {name for part in parts for name in part}
        return {
            name: CorpusStatistics.merge([part[name] for part in parts if name in part])
            for name in views
            if name in names
        }

    def retrieve(self, request: RetrievalRequest) -> Retrieval:
        """Encode the query once, gather the corpus statistics, search every shard with
        them and merge the shards' lists by (score descending, row id ascending).

        `phases` then holds this call's seconds per step (encode, statistics, search, merge),
        for `lede bench cluster`.
        """
        started = time.perf_counter()
        vector = request.query_vector
        if vector is None and any(self._query_inputs[v] == "vector" for v in request.views):
            vector = self.encode_query(request.query)
        encoded = time.perf_counter()
        lexical = [name for name in request.views if self._query_inputs[name] == "text"]
        partial = request.allow_partial
        statistics = self.statistics(request.query, lexical, partial=partial) if lexical else None
        gathered = time.perf_counter()
        scattered = replace(
            request,
            query_vector=vector,
            statistics=statistics,
            facets=ALL_FACET_VALUES if request.facets else 0,
        )
        answered = self._scatter(
            lambda shard: shard.retrieve(scattered), self.shards, partial=partial
        )
        searched = time.perf_counter()
        missing = [
            self.layout.shard_name(number) for number, part in enumerate(answered) if part is None
        ]
        numbered = [(number, part) for number, part in enumerate(answered) if part is not None]
        parts = [part for _, part in numbered]
        lists = {
            name: merge_ranked([part.lists[name] for part in parts], request.depth)
            for name in request.views
        }
        merged = Retrieval(lists, missing=missing)
        if request.count != "none":
            merged.total = sum(part.total or 0 for part in parts)
        if request.facets:
            merged.facets = merge_facets([part.facets or {} for part in parts], request.facets)
        if request.keys:
            listed = {doc for ranked in lists.values() for doc in ranked.ids}
            count = len(self.shards)
            merged.keys = {
                doc: ChunkKey(key.article * count + shard, key.published)
                for shard, part in numbered
                for doc, key in part.keys.items()
                if doc in listed
            }
        self.phases = {
            "encode": encoded - started,
            "statistics": gathered - encoded,
            "search": searched - gathered,
            "merge": time.perf_counter() - searched,
        }
        return merged

    def records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        """The records from every shard that answers; when one does not and an id is not
        found elsewhere, that shard's error (a hit is never dropped silently)."""
        found: dict[int, ChunkRecord] = {}
        parts = self._scatter(lambda shard: shard.records(ids), self.shards, partial=True)
        for part in parts:
            found.update(part or {})
        down = [number for number, part in enumerate(parts) if part is None]
        if down and any(doc not in found for doc in ids):
            raise ShardUnavailableError(down, "it holds some of the hits")
        return found

    def encode_query(self, query: str) -> np.ndarray:
        vectors: np.ndarray = self.embedder.embed([query])
        return vectors

    def analyze(self, text: str) -> list[str]:
        return self.analyzer(text)

    def article(self, article_id: str) -> tuple[Article, list[ChunkRecord]] | None:
        return self._owner(article_id).article(article_id)

    def facet_values(self) -> dict[str, list[str]]:
        values: dict[str, set[str]] = {}
        for part in self._scatter(lambda shard: shard.facet_values(), self.shards):
            for facet, found in part.items():
                values.setdefault(facet, set()).update(found)
        return {facet: sorted(found) for facet, found in values.items()}

    def warm_up(self) -> None:
        """Load the model here and warm every shard (its kernels, FAISS on one thread)."""
        self.embedder.embed(["warm up"])
        self._scatter(lambda shard: shard.warm_up(), self.shards)

    def stats(self) -> dict[str, Any]:
        counts = self._scatter(lambda shard: shard.stats(), self.shards)
        return {
            "articles": sum(c["articles"] for c in counts),
            "chunks": sum(c["chunks"] for c in counts),
            "model": self.manifest.model.name,
            "shards": len(self.shards),
        }

    def info(self) -> dict[str, Any]:
        """`lede info`: the totals, and each shard's own info."""
        shards = self._scatter(lambda shard: shard.info(), self.shards)
        views: dict[str, Any] = {}
        for info in shards:
            for key, value in info["views"].items():
                if key not in ("seq", "checkpoint_seq"):
                    views[key] = views.get(key, 0) + value
        if "bm25_terms" in views:  # the shards' vocabularies overlap: at least the largest
            views["bm25_terms"] = max(info["views"]["bm25_terms"] for info in shards)
        return {
            "path": str(self.path),
            "manifest": self.manifest.to_json(),
            "layout": {"shards": self.layout.shards, "buckets": len(self.layout.bucket_shards)},
            "counts": self.stats(),
            "views": views,
            "total_bytes": sum(info["total_bytes"] for info in shards),
            "shards": shards,
        }

    def _owner(self, article_id: str) -> Shard:
        return self.shards[self.layout.shard_of(article_id)]

    def _by_shard(self, article_ids: Iterable[str]) -> dict[int, list[str]]:
        grouped: dict[int, list[str]] = {}
        for article_id in article_ids:
            grouped.setdefault(self.layout.shard_of(article_id), []).append(article_id)
        return grouped

    # --- writes ---------------------------------------------------------------------------

    @contextmanager
    def writing(self, timeout: float = 60.0) -> Iterator[None]:
        """One writer at a time across the shards (ids are numbered under it)."""
        with self._write_lock(timeout):
            yield

    def store_prepared(self, batch: EmbeddedBatch, lock_timeout: float) -> None:
        with self.writing(lock_timeout):
            self.write_prepared(batch, lock_timeout)

    def content_hashes(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The stored articles' content hashes, asked of their shards."""
        found: dict[str, str] = {}
        for shard, ids in self._by_shard(article_ids).items():
            found.update(self.shards[shard].content_hashes(ids))
        return found

    def embeddings_by_input(self, article_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The embeddings these articles' chunks hold, by input hash, from their shards."""
        found: dict[str, np.ndarray] = {}
        for shard, ids in self._by_shard(article_ids).items():
            found.update(self.shards[shard].embeddings_by_input(ids))
        return found

    def next_rowid(self) -> int:
        """The id the next stored chunk gets: one above any id a shard ever used."""
        ids: list[int] = self._scatter(lambda shard: shard.next_rowid(), self.shards)
        return max(ids)

    def write_prepared(self, batch: EmbeddedBatch, lock_timeout: float = 60.0) -> None:
        """Number the batch's chunks globally, then let each shard store its articles.
        Hold `writing()` around it."""
        next_id = self.next_rowid()
        items: dict[int, list[Any]] = {}
        ids: dict[int, list[int]] = {}
        for item in batch.articles:
            shard = self.layout.shard_of(item.article.id)
            items.setdefault(shard, []).append(item)
            ids.setdefault(shard, []).extend(range(next_id, next_id + len(item.chunks)))
            next_id += len(item.chunks)
        for shard, part in items.items():
            vectors = {h: batch.vectors[h] for item in part for h in item.input_hashes}
            self.shards[shard].write_rows(EmbeddedBatch(part, vectors, 0), ids[shard], lock_timeout)

    def delete(self, article_ids: Sequence[str], *, lock_timeout: float = 60.0) -> list[str]:
        """Delete articles from their shards; returns the ids that were there."""
        found: set[str] = set()
        with self.writing(lock_timeout):
            for shard, ids in self._by_shard(dict.fromkeys(article_ids)).items():
                found.update(self.shards[shard].delete(ids, lock_timeout=lock_timeout))
        return [article_id for article_id in dict.fromkeys(article_ids) if article_id in found]

    def checkpoint_if_due(self, lock_timeout: float = 60.0) -> None:
        with self.writing(lock_timeout):
            self._choose_tier(lock_timeout)
        for shard in self.shards:
            shard.checkpoint_if_due(lock_timeout)

    def checkpoint(self) -> None:
        self._choose_tier()
        for shard in self.shards:
            shard.checkpoint_now()

    def _choose_tier(self, lock_timeout: float = 60.0) -> None:
        """With the "auto" FAISS factory: the size tier of the whole corpus, not of each
        shard, and above Flat one quantizer trained once, on the sample one index would train
        on, and installed in every shard (decision 45). A shard alone would choose its tier by
        its own size and train on its own vectors."""
        if not DenseView.sized_by_corpus(self.manifest):
            return  # a factory chosen at creation: every shard builds it from its own rows
        total = sum(int(counts["chunks"]) for counts in self._scatter(_stats, self.shards))
        wanted = DenseView.shared_form(self.manifest, total)
        if wanted == self.layout.dense_template:
            return
        template = None
        if wanted is not None:
            sample = self._training_sample(DenseView.form_training_size(self.manifest, wanted))
            template = DenseView.shared_template(self.manifest, total, sample)
        logger.info("%s: the dense view of every shard becomes %s", self.path, wanted or "auto")
        for shard in self.shards:
            shard.install_template(DenseView.name, template, lock_timeout)
        self.layout = replace(self.layout, dense_template=wanted)
        write_layout(self.path, self.layout)  # last: the commit of the new tier

    def _training_sample(self, training_size: int) -> np.ndarray:
        """The stored embeddings one index of these chunks would train its quantizer on (an
        even draw over the row ids; `LedeIndex._training_sample`)."""
        owned = self._scatter(lambda shard: shard.live_ids(DenseView.name), self.shards)
        ids = np.sort(np.concatenate(owned)) if owned else np.zeros(0, dtype=np.int64)
        sample = ids[:: max(1, len(ids) // max(100_000, training_size))]
        vectors = np.empty((len(sample), self.manifest.model.dimension), dtype=np.float32)
        for shard, mine in zip(self.shards, owned, strict=True):
            mask = np.isin(sample, mine)
            if mask.any():
                vectors[mask] = shard.stored_embeddings(sample[mask].tolist())
        return vectors

    @classmethod
    def repair_directory(cls, path: Path) -> dict[str, int]:
        """Rebuild every shard's views from its SQLite (`lede repair`)."""
        layout = read_layout(Path(path))
        totals = {"articles": 0, "chunks": 0}
        for shard in range(layout.shards):
            counts = ShardIndex.repair_directory(Path(path) / layout.shard_name(shard))
            totals = {key: totals[key] + counts[key] for key in totals}
        return totals


def _stats(shard: Shard) -> dict[str, Any]:
    return shard.stats()


def merge_ranked(parts: Sequence[RankedList], depth: int) -> RankedList:
    """The shards' lists of one view as one index's: best first, ties to the lower id,
    cut at `depth`. Cut off when a part was or the parts together reach the depth."""
    pairs = sorted(
        ((score, doc) for part in parts for doc, score in zip(part.ids, part.scores, strict=True)),
        key=lambda pair: (-pair[0], pair[1]),
    )
    kept = pairs[:depth]
    matched = [part.matched for part in parts]
    return RankedList(
        [doc for _, doc in kept],
        [score for score, _ in kept],
        len(pairs) >= depth or any(part.truncated for part in parts),
        None if any(m is None for m in matched) else sum(m for m in matched if m is not None),
    )


def merge_facets(
    parts: Sequence[dict[str, list[dict[str, Any]]]], limit: int
) -> dict[str, list[dict[str, Any]]]:
    """Facet counts of disjoint article sets, summed; the most first (then by value)."""
    merged: dict[str, dict[str, int]] = {}
    for part in parts:
        for facet, values in part.items():
            counts = merged.setdefault(facet, {})
            for entry in values:
                counts[entry["value"]] = counts.get(entry["value"], 0) + int(entry["count"])
    return {
        facet: [
            {"value": value, "count": count}
            for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        ]
        for facet, counts in merged.items()
    }
