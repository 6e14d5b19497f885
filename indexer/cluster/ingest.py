"""`lede index SOURCE... --ray ADDRESS`: chunk and embed on a Ray cluster, write to the shards.

The driver reads the sources and keeps only new and changed articles (content hashes asked of
the owning shards, so a re-run after a crash skips what was committed); batches of them flow
through a Ray Data pipeline whose embed stage is an actor pool (`ActorPoolStrategy`; with GPUs
in the cluster, `num_gpus=1` per actor and PyTorch on CUDA, else ONNX Runtime on the CPU), and
the prepared rows come back, in order, to the driver, which numbers their chunks and writes
them to the owning shards batch by batch (each batch committed per shard before the next).
The driver reads ahead at most `WINDOW` batches: a job of any size runs in bounded memory.
The sharded directory lives on the driver's disk (or storage the driver shares).
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import ray

from lede.indexer.chunker import Chunker
from lede.indexer.encoders.embedder import embedder_for
from lede.indexer.ingest import WriteReport, prepare_changed, select_changed
from lede.indexer.manifest import Manifest
from lede.indexer.models import Article
from lede.indexer.runtime import ModelRuntime, configure, current
from lede.indexer.shards.sharded import ShardedIndex

# Batches per Ray Data job: the driver holds at most this many batches of articles at a time.
# The embedding actors start once per job (a model load, a few seconds), small beside
# 64 x 256 articles of embedding.
WINDOW = 64


class EmbedStage:
    """The chunk and embed stages in a Ray Data actor: one embedder per actor."""

    def __init__(self, manifest: Manifest, device: str, batch_size: int, runtime: ModelRuntime):
        configure(runtime)  # the driver's
        self.manifest = manifest
        self.embedder = embedder_for(manifest.model.name, device=device, batch_size=batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for payload in batch["articles"]:
            articles, stored, known = pickle.loads(payload)
            report = WriteReport()
            prepared = prepare_changed(
                articles,
                stored,
                Chunker(self.embedder, self.manifest.settings.chunker),
                self.embedder,
                _returning(known),  # the updated articles' stored vectors
                report,
            )
            out.append(pickle.dumps((prepared, report)))
        return {"prepared": np.array(out, dtype=object)}


def _returning(
    known: dict[str, np.ndarray],
) -> Callable[[list[str]], dict[str, np.ndarray]]:
    def stored_embeddings(article_ids: list[str]) -> dict[str, np.ndarray]:
        return known

    return stored_embeddings


def _payloads(
    index: ShardedIndex, articles: Iterable[Article], batch_size: int, report: WriteReport
) -> Iterator[dict[str, Any]]:
    """Batches of the new and changed articles, with the hashes the shards hold for them."""
    batch: list[Article] = []

    def flush() -> Iterator[dict[str, Any]]:
        stored = index.content_hashes([a.id for a in batch])
        changed = select_changed(batch, stored, report)
        if changed:
            updated = [a.id for a in changed if a.id in stored]
            known = index.embeddings_by_input(updated) if updated else {}
            hashes = {a.id: stored[a.id] for a in changed if a.id in stored}
            yield {"articles": pickle.dumps((changed, hashes, known))}

    for article in articles:
        batch.append(article)
        if len(batch) >= batch_size:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def index_on_ray(
    index: ShardedIndex,
    articles: Iterable[Article],
    *,
    workers: int = 2,
    batch_size: int = 256,
    device: str = "cpu",
    embed_batch_size: int = 64,
    worker_cpus: float = 0.5,
    window: int = WINDOW,
) -> WriteReport:
    """Add new articles and update changed ones, embedding on `workers` Ray actors (one GPU
    each when `device` is "cuda", or "auto" on a cluster with GPUs). Call after `ray.init`.

    The sources are read lazily: at most `window` batches are held by the driver and in
    flight on the cluster at a time (one Ray Data job each), so an archive of any size is
    indexed in the memory of `window x batch_size` articles."""
    if device == "auto":
        device = "cuda" if ray.cluster_resources().get("GPU", 0) >= 1 else "cpu"
    report = WriteReport()
    payloads = _payloads(index, articles, batch_size, report)
    while chunk := list(itertools.islice(payloads, window)):
        _embed_and_write(index, chunk, report, workers, device, embed_batch_size, worker_cpus)
    index.checkpoint_if_due()
    return report


def _embed_and_write(
    index: ShardedIndex,
    payloads: list[dict[str, Any]],
    report: WriteReport,
    workers: int,
    device: str,
    embed_batch_size: int,
    worker_cpus: float,
) -> None:
    """One Ray Data job over these batches; their rows written in order as they come back."""
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # row ids as one process would number
    dataset = ray.data.from_items(payloads).map_batches(
        EmbedStage,
        fn_constructor_kwargs={
            "manifest": index.manifest,
            "device": device,
            "batch_size": embed_batch_size,
            "runtime": current(),
        },
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(workers, len(payloads))),
        num_cpus=worker_cpus,
        num_gpus=1 if device == "cuda" else 0,
    )
    for row in dataset.iter_rows():
        prepared, counted = pickle.loads(row["prepared"])
        with index.writing():
            index.write_prepared(prepared)
        report.include(counted)
