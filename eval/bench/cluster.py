"""One index against a sharded one in this process, on a local two-node Ray cluster, and
through Ray Serve replicas: hybrid query latency with the scatter-gather broken down.

    python -m lede.eval.bench.cluster [--articles 21578] [--shards 3] [--queries 200]
        [--json eval/results/bench_cluster.json]
    python -m lede.eval.bench.cluster --synthetic 500000 [--json ...]   # 1M chunks
    python -m lede.eval.bench.cluster --approximate-only 50000 [--json ...]

Corpus: Reuters-21578 articles (../shared/datasets/reuters21578), chunked as by default and
embedded with the model-free hashing embedder at MiniLM's 384 dimensions, so that the figures
are retrieval and distribution, not the encoder (add the encoder's time from `lede bench
service`). Queries: article titles. Every run's top 10 is compared with one index's.

The two "nodes" are `ray.cluster_utils.Cluster` nodes on 127.0.0.1, each pinned to its own
core (`os.sched_setaffinity` before it starts), as the two cores of this machine allow.
Timings are reported as ratios to one index in the same run. Bulk indexing (`index_on_ray`)
uses the real bundled model on 1 and 2 embedding actors (one per node), as chunks per second.
The shard actors are measured on one node of both cores and on two nodes of one core each, and
a cost model (`cluster_model.py`) fitted on the first is checked on the second.
"""

from __future__ import annotations

import os

# Before anything imports Ray: every node and address on 127.0.0.1 (decision 41).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import argparse
import random
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from lede.eval.bench.cluster_model import CostModel, Measured, check, projections
from lede.eval.bench.indexer import reuters_vocabulary
from lede.eval.local_server import wait_ready
from lede.eval.report import percentiles, write_result
from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import Article
from lede.indexer.searchable import RetrievalRequest, SearchableIndex
from lede.indexer.shards.sharded import ShardedIndex
from lede.indexer.sources import Skipped, read_source
from lede.service.engine import SearchEngine

ROOT = Path(__file__).resolve().parents[2]
REUTERS = ROOT.parent / "shared" / "datasets" / "reuters21578" / "corpus.jsonl"
DIMENSION = 384


def _articles(limit: int) -> list[Article]:
    found = []
    for item in read_source(REUTERS):
        if not isinstance(item, Skipped):
            found.append(item)
            if len(found) >= limit:
                break
    return found


def _factory(index: LedeIndex) -> str:
    view: Any = index.views["dense"]
    return str(view.dense.factory)


def _queries(corpus: list[Article], count: int) -> list[str]:
    """Titles of articles drawn evenly over the corpus."""
    return [a.title for a in corpus[:: max(1, len(corpus) // count)] if a.title][:count]


def _top10(index: SearchableIndex, query: str) -> list[tuple[str, float]]:
    hits = SearchEngine(index).search(query, k=10, highlight=False).hits
    return [(hit.record.chunk_id, hit.score) for hit in hits]


def _latencies(
    index: SearchableIndex, queries: list[str], phases: Callable[[], dict[str, float]] | None
) -> tuple[dict[str, float], dict[str, float]]:
    engine = SearchEngine(index)
    engine.search(queries[0], k=10)  # warm
    samples: list[float] = []
    parts: dict[str, list[float]] = {}
    for query in queries:
        started = time.perf_counter()
        engine.search(query, k=10, highlight=False)
        samples.append((time.perf_counter() - started) * 1000)
        for name, seconds in (phases() if phases else {}).items():
            parts.setdefault(name, []).append(seconds * 1000)
    breakdown = {f"{name}_p50_ms": round(statistics.median(v), 3) for name, v in parts.items()}
    if parts:  # the rest: fusion, paging and the records round
        rest = [
            total - sum(step)
            for total, step in zip(samples, zip(*parts.values(), strict=True), strict=True)
        ]
        breakdown["fuse_and_fetch_p50_ms"] = round(statistics.median(rest), 3)
    return percentiles(samples), breakdown


def _dense_top10(index: SearchableIndex, query: str) -> set[int]:
    return set(index.retrieve(RetrievalRequest(query, ("dense",), 10)).lists["dense"].ids)


def approximate_tier(
    folder: Path, corpus: list[Article], shards: int, queries: list[str], threshold: int
) -> dict[str, Any]:
    """One index and a sharded one of `corpus` in the first IVF tier, its threshold lowered
    to `threshold` chunks for this run (Reuters is just under 100k chunks): recall@10 of the
    dense view against exact search, dense and hybrid p50, and whether the shards' quantizer
    is the one index's (decision 45)."""
    from lede.indexer.views import dense_search as dense

    tiers = dense.AUTO_TIERS
    first = next(tier for tier in tiers if tier.min_vectors == 100_000)
    dense.AUTO_TIERS = tuple(replace(t, min_vectors=threshold) if t is first else t for t in tiers)
    embedder = HashingEmbedder(dimension=DIMENSION)
    try:
        one = LedeIndex.create(folder / "ivf-one", embedder=embedder)
        one.add(corpus)
        sharded = ShardedIndex.create(folder / "ivf-sharded", shards, embedder=embedder)
        sharded.add(corpus)
        ids = np.asarray(sorted(one.views["dense"].live_ids()), dtype=np.int64)
        stored = one.store.embeddings(ids.tolist())
        truth = {
            query: set(ids[np.argsort(-(stored @ embedder.embed([query])[0]))[:10]].tolist())
            for query in queries
        }
        found: dict[str, Any] = {
            "factory": first.factory_for(DIMENSION),
            "nprobe": first.nprobe,
            "threshold_chunks": threshold,
            "chunks": len(ids),
            "largest_shard_chunks": max(int(s.stats()["chunks"]) for s in sharded.shards),
        }
        for name, index in (("one_index", one), ("sharded_in_process", sharded)):
            recall = [len(truth[q] & _dense_top10(index, q)) / 10 for q in queries]
            started = time.perf_counter()
            for query in queries:
                _dense_top10(index, query)
            dense_ms = (time.perf_counter() - started) * 1000 / len(queries)
            hybrid, _ = _latencies(index, queries, None)
            found[name] = {
                "recall_at_10": round(statistics.mean(recall), 4),
                "dense_mean_ms": round(dense_ms, 3),
                "hybrid_p50_ms": hybrid["p50_ms"],
            }
        found["sharded_recall_not_below_one_index"] = sum(
            len(truth[q] & _dense_top10(sharded, q)) >= len(truth[q] & _dense_top10(one, q))
            for q in queries
        )
        found["queries"] = len(queries)
        found["template"] = sharded.layout.dense_template
        one.close()
        sharded.close()
    finally:
        dense.AUTO_TIERS = tiers
    return found


def _run_clients(client: Callable[[], None], clients: int) -> float:
    """Run `client` on `clients` threads at once; the seconds until all return."""
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _driver_qps(index: SearchableIndex, queries: list[str], clients: int) -> float:
    """Queries per second with `clients` threads searching at once in this process."""
    engine = SearchEngine(index)
    position = iter(range(len(queries)))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                at = next(position, None)
            if at is None:
                return
            engine.search(queries[at], k=10, highlight=False)

    return round(len(queries) / _run_clients(client, clients), 1)


def _ray_driver(
    folder: Path, queries: list[str], reference: dict[str, Any], nodes: int
) -> dict[str, Any]:
    """3 shard actors on a cluster of `nodes` nodes, searched from this process: latency with
    its parts, QPS at 4 clients, and top 10 against one index."""
    from lede.indexer.cluster import shards as ray_shards

    with local_cluster(folder, nodes):
        placed = ray_shards.start(folder / "sharded", name=f"bench-{nodes}")
        cluster_index = ray_shards.ClusterIndex(placed.spec)
        latency, phases = _latencies(cluster_index, queries, lambda: cluster_index.phases)
        found = {
            "nodes": nodes,
            "cores_per_node": len(os.sched_getaffinity(0)) // nodes,
            **latency,
            **phases,
            "qps_4_clients": _driver_qps(cluster_index, queries, 4),
            "equal_top10": sum(_top10(cluster_index, q) == reference[q] for q in queries),
        }
        cluster_index.close()
        placed.stop()
    return found


def _measured(run: dict[str, Any], shards: int, chunks: int) -> Measured:
    return Measured(
        shards=shards,
        chunks=chunks,
        nodes=int(run.get("nodes", 1)),
        cores_per_node=int(run.get("cores_per_node", 1)),
        statistics_ms=run["statistics_p50_ms"],
        search_ms=run["search_p50_ms"],
        merge_ms=run["merge_p50_ms"],
        fetch_ms=run["fuse_and_fetch_p50_ms"],
        total_ms=run["p50_ms"],
        qps=run.get("qps_4_clients"),
    )


def cost_model(
    results: dict[str, Any], shards: int, chunks: int, target_chunks: int
) -> dict[str, Any]:
    """Fit the model (`cluster_model`) on the in-process and the one-node runs, check it on
    the two-node run, and project more nodes."""
    in_process = _measured(results["sharded_in_process"], shards, chunks)
    one_node = _measured(results["ray_driver_1_node"], shards, chunks)
    two_nodes = _measured(results["ray_driver"], shards, chunks)
    model = CostModel.fit(in_process, one_node)
    cores = two_nodes.cores_per_node
    return {
        "fitted_on": "sharded_in_process + ray_driver_1_node",
        "parameters": model.to_json(),
        "fitted_run": check(model, one_node),
        "checked_on_2_nodes": check(model, two_nodes),
        "projections": projections(model, target_chunks, cores),
    }


def _http_load(url: str, queries: list[str], clients: int) -> dict[str, float]:
    """`clients` threads sending the queries to /search in turn; latency and QPS."""
    samples: list[float] = []
    lock = threading.Lock()
    position = iter(range(len(queries)))

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                started = time.perf_counter()
                response = http.get(f"{url}/search", params={"query": queries[index], "k": 10})
                response.raise_for_status()
                with lock:
                    samples.append((time.perf_counter() - started) * 1000)

    elapsed = _run_clients(client, clients)
    return {**percentiles(samples), "qps": round(len(samples) / elapsed, 1), "clients": clients}


@contextmanager
def local_cluster(folder: Path, nodes: int = 2, *, serving: bool = False) -> Iterator[Any]:
    """Two Ray nodes on 127.0.0.1, each on its own core (or one node with both cores),
    writing only under `folder`; `serving`: connect as `lede serve --ray` does."""
    os.environ["RAY_TMPDIR"] = str(folder / "ray")
    token = folder / "ray-token"
    token.write_text(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    cores = sorted(os.sched_getaffinity(0))
    try:
        if nodes == 1:
            cluster = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": len(cores), "include_dashboard": False},
            )
        else:
            os.sched_setaffinity(0, {cores[0]})
            cluster = Cluster(
                initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
            )
            os.sched_setaffinity(0, {cores[-1]})
            cluster.add_node(num_cpus=1)
    finally:
        os.sched_setaffinity(0, set(cores))
    from lede.service.ray_serve import connect

    connect(cluster.address, serving=serving)
    try:
        yield cluster
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


def _bulk_indexing(folder: Path, corpus: list[Article], workers: list[int]) -> dict[str, Any]:
    """`index_on_ray` with the real model on 1, 2, ... embedding actors: chunks per second
    (each run into a fresh 3-shard index; the actors' model load counted in)."""
    from lede.indexer.cluster.ingest import index_on_ray

    found: dict[str, Any] = {}
    for count in workers:
        with ShardedIndex.create(folder / f"bulk-{count}", 3) as index:
            started = time.perf_counter()
            report = index_on_ray(index, corpus, workers=count, batch_size=32, worker_cpus=0.6)
            seconds = time.perf_counter() - started
        found[f"workers_{count}"] = {
            "articles": report.added,
            "chunks": report.chunks,
            "seconds": round(seconds, 1),
            "chunks_per_s": round(report.chunks / seconds, 1),
        }
    if len(workers) > 1:
        first, last = found[f"workers_{workers[0]}"], found[f"workers_{workers[-1]}"]
        found["speedup"] = round(last["chunks_per_s"] / first["chunks_per_s"], 2)
    return found


def synthetic_corpus(documents: int, seed: int = 7) -> Callable[[], Iterator[Article]]:
    """`documents` articles of 120 words drawn from Reuters' word frequencies (two chunks
    each), generated again on every call, block by block, so the corpus is never all in
    memory."""
    vocabulary, weights = reuters_vocabulary()

    def articles() -> Iterator[Article]:
        rng = np.random.default_rng(seed)
        for start in range(0, documents, 10_000):
            block = rng.choice(
                len(vocabulary), size=(min(10_000, documents - start), 120), p=weights
            )
            for offset, row in enumerate(block):
                text = " ".join(vocabulary[j] for j in row) + "."
                yield Article(id=f"doc-{start + offset}", title="", text=text)

    return articles


def synthetic_queries(count: int, seed: int = 7) -> list[str]:
    """2-5 mid-frequency words each (as `bench indexer` asks its synthetic corpus)."""
    vocabulary, _ = reuters_vocabulary()
    picker = random.Random(seed)
    middle = vocabulary[50:3000]
    return [" ".join(picker.sample(middle, picker.randint(2, 5))) for _ in range(count)]


def run(
    articles: int,
    shards: int,
    queries: int,
    replicas: list[int],
    bulk_articles: int = 0,
    bulk_workers: tuple[int, ...] = (1, 2),
    synthetic: int = 0,
) -> dict[str, Any]:
    """Reuters (`articles`), or `synthetic` generated 120-word articles (two chunks each); bulk
    indexing (the real model over Reuters articles) only with Reuters."""
    from lede.service.ray_serve import serve_on_ray
    from lede.service.settings import Settings

    if synthetic:
        corpus: list[Article] = []
        source = synthetic_corpus(synthetic)
        asked = synthetic_queries(queries)
        bulk_articles = 0
    else:
        corpus = _articles(articles)
        asked = _queries(corpus, queries)

        def source() -> Iterator[Article]:
            return iter(corpus)

    folder = Path(tempfile.mkdtemp(prefix="lede-bench-cluster-"))
    embedder = HashingEmbedder(dimension=DIMENSION)
    results: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        one = LedeIndex.create(folder / "one", embedder=embedder)
        one.add(source())
        one.checkpoint_if_due()
        build_one = time.perf_counter() - started
        started = time.perf_counter()
        sharded = ShardedIndex.create(folder / "sharded", shards, embedder=embedder)
        sharded.add(source())
        build_sharded = time.perf_counter() - started
        stats = one.stats()
        chunks = stats["chunks"]
        results["corpus"] = {
            "source": "synthetic" if synthetic else "reuters",
            "articles": stats["articles"],
            "chunks": chunks,
            "queries": len(asked),
            "dense_factory": one.views["dense"].stats() | {"factory": _factory(one)},
            "sharded_template": sharded.layout.dense_template,
        }
        results["build_s"] = {"one": round(build_one, 1), "sharded": round(build_sharded, 1)}
        reference = {query: _top10(one, query) for query in asked}
        one.warm_up_views()
        latency_one, _ = _latencies(one, asked, None)
        latency_sharded, phases = _latencies(sharded, asked, lambda: sharded.phases)
        results["one_index"] = latency_one
        results["sharded_in_process"] = {
            **latency_sharded,
            **phases,
            "equal_top10": sum(_top10(sharded, q) == reference[q] for q in asked),
        }
        sharded.close()
        results["ray_driver_1_node"] = _ray_driver(folder, asked, reference, 1)
        results["ray_driver"] = _ray_driver(folder, asked, reference, 2)
        latency_ray = results["ray_driver"]
        with local_cluster(folder):
            serving: dict[str, Any] = {}
            for count in replicas if replicas else []:
                served = serve_on_ray(
                    Settings(index=folder / "sharded"),  # type: ignore[call-arg]
                    replicas=count,
                    port=8961,
                )
                wait_ready(served.url)
                _http_load(served.url, asked[:20], 1)  # warm every replica
                serving[f"replicas_{count}"] = {
                    "clients_1": _http_load(served.url, asked, 1),
                    "clients_4": _http_load(served.url, asked, 4),
                }
                served.stop()
            if serving:
                results["ray_serve"] = serving
            if bulk_articles:
                results["bulk_indexing_real_model"] = _bulk_indexing(
                    folder, corpus[:bulk_articles], list(bulk_workers)
                )
        base = latency_one["p50_ms"]
        results["p50_over_one_index"] = {
            "sharded_in_process": round(latency_sharded["p50_ms"] / base, 2),
            "ray_driver_1_node": round(results["ray_driver_1_node"]["p50_ms"] / base, 2),
            "ray_driver": round(latency_ray["p50_ms"] / base, 2),
        }
        results["cost_model"] = cost_model(results, shards, chunks, chunks)
        one.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=21578)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--replicas", default="1,2", help="Comma-separated replica counts.")
    parser.add_argument(
        "--bulk-articles",
        type=int,
        default=300,
        help="Articles indexed with the real model on 1 and 2 embedding actors (0: skip).",
    )
    parser.add_argument(
        "--approximate-only",
        type=int,
        default=0,
        metavar="THRESHOLD",
        help="Only compare recall@10 of one index and a sharded one in the first IVF tier, "
        "its threshold lowered to THRESHOLD chunks (Reuters has 99k).",
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="N generated 120-word articles (two chunks each) instead of Reuters (1000000: 2M "
        "chunks; no Serve or bulk-indexing part).",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    replicas = [int(value) for value in args.replicas.split(",")]
    config = {key: value for key, value in vars(args).items() if key != "json"}
    if args.approximate_only:
        corpus = _articles(args.articles)
        asked = _queries(corpus, args.queries)
        folder = Path(tempfile.mkdtemp(prefix="lede-bench-cluster-"))
        try:
            figures = approximate_tier(folder, corpus, args.shards, asked, args.approximate_only)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        write_result(args.json, "cluster_approximate_tier", config, figures)
        return
    figures = run(
        args.articles,
        args.shards,
        args.queries,
        replicas,
        args.bulk_articles,
        synthetic=args.synthetic,
    )
    write_result(args.json, "cluster", config, figures)


if __name__ == "__main__":
    main()
