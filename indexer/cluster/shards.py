"""A sharded index on a Ray cluster: one actor per shard, one writer, any number of readers.

- `ShardActor` opens one shard directory (a complete index, as a `ShardIndex`) from the disk
  of the node it runs on and answers the `sharded.Shard` calls. Ray restarts it when it dies
  (`max_restarts=-1`); it then reopens the shard from SQLite, so every acknowledged write
  is there (a write is acknowledged after the shard's commit).
- `RayShard` is the proxy a `ShardedIndex` holds for a shard actor. A shard that does not
  answer within `timeout` (down, restarting) raises `ShardUnavailableError`: the service
  answers 503 rather than results without that shard.
- `WriterActor` is the cluster's one writer: it numbers chunks across the shards (as one
  index's SQLite would), chunks and embeds, and writes each shard's rows to its actor.
- `ClusterIndex` is what a service replica holds: reads scatter from the replica to every
  shard actor in parallel, writes go to the writer.

Ray is an optional extra (`pip install lede[ray]`); nothing else in Lede imports this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError, RayTaskError

from lede.indexer.encoders.embedder import Embedder, embedder_for
from lede.indexer.errors import IndexLockedError, ShardUnavailableError
from lede.indexer.ingest import EmbeddedBatch, Progress, WriteReport
from lede.indexer.manifest import Manifest, read_manifest
from lede.indexer.models import Article, ChunkRecord
from lede.indexer.runtime import ModelRuntime, configure, current
from lede.indexer.searchable import Retrieval, RetrievalRequest
from lede.indexer.shards.layout import ShardLayout, read_layout
from lede.indexer.shards.shard import ShardIndex
from lede.indexer.shards.sharded import Shard, ShardedIndex
from lede.indexer.views.contract import CorpusStatistics

T = TypeVar("T")
NAMESPACE = "lede"
READ_TIMEOUT = 10.0  # seconds a shard may take to answer a read before it counts as down
WRITE_TIMEOUT = 120.0


@ray.remote(max_restarts=-1, max_task_retries=0)
class ShardActor:
    """One shard directory, opened on the node the actor runs on."""

    def __init__(self, path: str, runtime: ModelRuntime):
        configure(runtime)
        self.index = ShardIndex.open(Path(path))
        self.index.warm_up_views()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.index, method)(*args, **kwargs)

    def pid(self) -> int:
        import os

        return os.getpid()

    def node(self) -> str:
        """The id of the node the actor runs on."""
        return str(ray.get_runtime_context().get_node_id())


def _cause(error: RayTaskError) -> BaseException:
    """The exception the remote method raised (Ray wraps it with the remote traceback)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


class RayShard:
    """`sharded.Shard` over a `ShardActor` (see the module docstring)."""

    def __init__(self, actor: Any, number: int, timeout: float = READ_TIMEOUT):
        self.actor = actor
        self.number = number
        self.timeout = timeout

    def _call(self, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        try:
            return ray.get(
                self.actor.call.remote(method, *args, **kwargs), timeout=timeout or self.timeout
            )
        except GetTimeoutError:
            raise ShardUnavailableError([self.number], "no answer in time") from None
        except ActorDiedError:
            raise ShardUnavailableError([self.number], "its actor died", restarting=False) from None
        except RayActorError as error:
            raise ShardUnavailableError([self.number], type(error).__name__) from None
        except RayTaskError as error:  # the shard's own error (a lock timeout, say): as is
            raise _cause(error) from None

    def statistics(self, query: str, views: Sequence[str]) -> dict[str, CorpusStatistics]:
        found: dict[str, CorpusStatistics] = self._call("statistics", query, list(views))
        return found

    def retrieve(self, request: RetrievalRequest) -> Retrieval:
        found: Retrieval = self._call("retrieve", request)
        return found

    def records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        found: dict[int, ChunkRecord] = self._call("records", list(ids))
        return found

    def article(self, article_id: str) -> tuple[Article, list[ChunkRecord]] | None:
        found: tuple[Article, list[ChunkRecord]] | None = self._call("article", article_id)
        return found

    def facet_values(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self._call("facet_values")
        return found

    def stats(self) -> dict[str, Any]:
        found: dict[str, Any] = self._call("stats")
        return found

    def info(self) -> dict[str, Any]:
        found: dict[str, Any] = self._call("info")
        return found

    def warm_up(self) -> None:
        self._call("warm_up_views")

    def content_hashes(self, article_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = self._call("content_hashes", list(article_ids))
        return found

    def embeddings_by_input(self, article_ids: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = self._call("embeddings_by_input", list(article_ids))
        return found

    def next_rowid(self) -> int:
        found: int = self._call("next_rowid")
        return found

    def write_rows(
        self, batch: EmbeddedBatch, rowids: Sequence[int], lock_timeout: float = 60.0
    ) -> None:
        self._call("write_rows", batch, list(rowids), lock_timeout, timeout=WRITE_TIMEOUT)

    def delete(self, article_ids: Sequence[str], *, lock_timeout: float = 60.0) -> list[str]:
        found: list[str] = self._call(
            "delete", list(article_ids), lock_timeout=lock_timeout, timeout=WRITE_TIMEOUT
        )
        return found

    def checkpoint_if_due(self, lock_timeout: float = 60.0) -> None:
        self._call("checkpoint_if_due", lock_timeout, timeout=WRITE_TIMEOUT)

    def checkpoint_now(self, lock_timeout: float = 60.0) -> None:
        self._call("checkpoint_now", lock_timeout, timeout=WRITE_TIMEOUT)

    def live_ids(self, view: str) -> np.ndarray:
        found: np.ndarray = self._call("live_ids", view, timeout=WRITE_TIMEOUT)
        return found

    def stored_embeddings(self, ids: Sequence[int]) -> np.ndarray:
        found: np.ndarray = self._call("stored_embeddings", list(ids), timeout=WRITE_TIMEOUT)
        return found

    def install_template(self, view: str, data: bytes | None, lock_timeout: float = 60.0) -> None:
        self._call("install_template", view, data, lock_timeout, timeout=WRITE_TIMEOUT)

    def close(self) -> None:
        """The actor keeps its shard open; the cluster's owner stops it."""


class _ThreadLock:
    """The writer's lock: one write at a time in its process (the writer is the only one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, timeout: float) -> AbstractContextManager[object]:
        lock = self._lock

        class Held:
            def __enter__(self) -> None:
                if not lock.acquire(timeout=timeout):
                    raise IndexLockedError(f"other writes kept the cluster busy for {timeout} s")

            def __exit__(self, *exc: object) -> None:
                lock.release()

        return Held()


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """What a replica needs to reach a sharded index on the cluster (picklable)."""

    path: str  # the directory's path as the nodes see it (each opens its own shard there)
    layout: ShardLayout
    manifest: Manifest
    shard_names: tuple[str, ...]
    writer_name: str
    timeout: float = READ_TIMEOUT
    runtime: ModelRuntime = field(default_factory=current)  # the driver's, for the actors

    def shards(self) -> list[Shard]:
        return [
            RayShard(ray.get_actor(name, namespace=NAMESPACE), number, self.timeout)
            for number, name in enumerate(self.shard_names)
        ]


class ParallelScatter:
    """Calls every shard at once (each call waits on its actor in a thread); when some do
    not answer, one `ShardUnavailableError` names them all (with `partial`: None for them)."""

    def __init__(self, shards: int):
        self.pool = ThreadPoolExecutor(max_workers=shards, thread_name_prefix="lede-scatter")

    def __call__(
        self, call: Callable[[Shard], T], shards: Sequence[Shard], *, partial: bool = False
    ) -> list[Any]:
        futures = [self.pool.submit(call, shard) for shard in shards]
        results: list[T | None] = []
        missing: list[int] = []
        reason, restarting = "", True
        for future in futures:
            try:
                results.append(future.result())
            except ShardUnavailableError as error:
                missing.extend(error.shards)
                reason, restarting = error.reason, restarting and error.restarting
                results.append(None)
        if missing and not partial:
            raise ShardUnavailableError(missing, reason, restarting=restarting)
        return results


@ray.remote(max_restarts=-1, max_task_retries=0)
class WriterActor:
    """The cluster's one writer (see the module docstring)."""

    def __init__(self, spec: ClusterSpec, device: str = "cpu", embed_batch_size: int = 64):
        configure(spec.runtime)
        embedder = embedder_for(
            spec.manifest.model.name, device=device, batch_size=embed_batch_size
        )
        self.index = ShardedIndex(
            Path(spec.path),
            spec.layout,
            spec.manifest,
            spec.shards(),
            embedder,
            write_lock=_ThreadLock(),
        )

    def add(self, articles: list[Article], lock_timeout: float = 60.0) -> WriteReport:
        """One batch, stored whole; the checkpoint is the caller's `checkpoint_if_due`."""
        return self.index.add(
            articles, batch_size=max(1, len(articles)), checkpoint=False, lock_timeout=lock_timeout
        )

    def delete(self, article_ids: list[str], lock_timeout: float = 60.0) -> list[str]:
        return self.index.delete(article_ids, lock_timeout=lock_timeout)

    def checkpoint_if_due(self, lock_timeout: float = 60.0) -> None:
        self.index.checkpoint_if_due(lock_timeout)


class ClusterIndex(ShardedIndex):
    """A replica's view of the sharded index on the cluster: reads from every shard actor
    at once, writes through the writer actor."""

    def __init__(self, spec: ClusterSpec, embedder: Embedder | None = None):
        self.spec = spec
        self._parallel = ParallelScatter(len(spec.shard_names))
        super().__init__(
            Path(spec.path),
            spec.layout,
            spec.manifest,
            spec.shards(),
            embedder or embedder_for(spec.manifest.model.name),
            scatter=self._parallel,
        )
        self._writer = ray.get_actor(spec.writer_name, namespace=NAMESPACE)

    def add_batch(
        self,
        articles: list[Article],
        report: WriteReport,
        progress: Progress | None,
        lock_timeout: float,
    ) -> None:
        """A batch of `ShardedIndex.add`'s loop (`ingest.write_articles`: batch size, progress,
        `on_batch`, the checkpoint after the last batch), chunked, embedded and stored by the
        writer actor."""
        done: WriteReport = self._writer_call("add", articles, lock_timeout)
        report.include(done)
        if progress is not None:
            progress.chunks(done.embedded, len(articles), done.embedded)
            progress.articles(len(articles))

    def delete(self, article_ids: Sequence[str], *, lock_timeout: float = 60.0) -> list[str]:
        found: list[str] = self._writer_call("delete", list(article_ids), lock_timeout)
        return found

    def checkpoint_if_due(self, lock_timeout: float = 60.0) -> None:
        self._writer_call("checkpoint_if_due", lock_timeout)

    def _writer_call(self, method: str, *args: Any) -> Any:
        try:
            return ray.get(getattr(self._writer, method).remote(*args), timeout=WRITE_TIMEOUT)
        except GetTimeoutError:
            raise ShardUnavailableError([], "the writer did not answer in time") from None
        except RayActorError as error:
            raise ShardUnavailableError([], f"the writer is down: {type(error).__name__}") from None
        except RayTaskError as error:  # bad input, a busy lock, a shard down: as raised
            raise _cause(error) from None

    def close(self) -> None:
        self._parallel.pool.shutdown(wait=False)


@dataclass(slots=True)
class Cluster:
    """The actors `start` placed for one sharded directory, and how to reach them."""

    spec: ClusterSpec
    shard_actors: list[Any]
    writer: Any

    def stop(self) -> None:
        for actor in [*self.shard_actors, self.writer]:
            ray.kill(actor, no_restart=True)


def start(
    path: Path,
    *,
    name: str = "lede",
    shard_cpus: float = 0.25,
    writer_cpus: float = 0.1,
    device: str = "cpu",
) -> Cluster:
    """Place one actor per shard of the sharded directory at `path`, spread over the
    cluster's nodes (each opens its shard from its own disk, at the same path), and the
    writer. Call after `ray.init`."""
    path = Path(path).resolve()
    layout = read_layout(path)
    manifest = read_manifest(path / layout.shard_name(0))
    names = tuple(f"{name}-{layout.shard_name(shard)}" for shard in range(layout.shards))
    actors = [
        ShardActor.options(  # type: ignore[attr-defined]
            name=actor_name,
            namespace=NAMESPACE,
            num_cpus=shard_cpus,
            scheduling_strategy="SPREAD",
        ).remote(str(path / layout.shard_name(shard)), current())
        for shard, actor_name in enumerate(names)
    ]
    ray.get([actor.pid.remote() for actor in actors])  # opened (and its log replayed)
    spec = ClusterSpec(str(path), layout, manifest, names, f"{name}-writer")
    writer = WriterActor.options(  # type: ignore[attr-defined]
        name=spec.writer_name, namespace=NAMESPACE, num_cpus=writer_cpus
    ).remote(spec, device)
    return Cluster(spec, actors, writer)
