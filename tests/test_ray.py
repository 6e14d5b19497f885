"""Lede on a real local Ray cluster of two nodes on 127.0.0.1 (`ray.cluster_utils.Cluster`):
shard actors equal one index, writes through the cluster, Ray Serve replicas over HTTP, a
killed shard actor restarted with nothing lost, and a dead one answered with a 503."""

from __future__ import annotations

import os

# Before Ray is imported: every node, and every address Ray hands out, on 127.0.0.1 (by
# default Ray resolves 127.0.0.1 to the machine's external address).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import contextlib
import itertools
import json
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

ray = pytest.importorskip("ray")

from ray import serve  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from lede.eval.bench.memory import process_memory, processes_titled  # noqa: E402
from lede.eval.local_server import LEDE, wait_ready  # noqa: E402
from lede.indexer.cluster import shards as ray_shards  # noqa: E402
from lede.indexer.encoders.hashing_embedder import HashingEmbedder  # noqa: E402
from lede.indexer.index import LedeIndex  # noqa: E402
from lede.indexer.manifest import IndexSettings  # noqa: E402
from lede.indexer.models import Article  # noqa: E402
from lede.indexer.searchable import RetrievalRequest, SearchableIndex  # noqa: E402
from lede.indexer.shards.layout import read_layout  # noqa: E402
from lede.indexer.shards.sharded import ShardedIndex  # noqa: E402
from lede.indexer.views.lexical import BM25Settings  # noqa: E402
from lede.service.engine import Mode, SearchEngine  # noqa: E402
from lede.service.ray_serve import connect, serve_on_ray  # noqa: E402
from lede.service.settings import Settings  # noqa: E402
from tests import test_sharded_contract  # noqa: E402
from tests.contracts.searchable import embedder  # noqa: E402
from tests.test_sharded import REUTERS, _retrievals, _reuters  # noqa: E402

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(not REUTERS.exists(), reason="needs ../shared/datasets"),
]
KEY = "cluster-key-0123456789abcdef"
SETTINGS = IndexSettings(bm25=BM25Settings(k1=1.2, b=0.75))


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Everything the cluster writes: Ray's sessions and its token, and the indexes (a short
    path: Ray's socket paths must stay under 108 characters)."""
    folder = Path(tempfile.mkdtemp(prefix="lede-ray-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(workdir: Path) -> Iterator[Cluster]:
    outside = [Path("/tmp/ray"), Path.home() / ".ray"]  # Ray's defaults
    existed = [path.exists() for path in outside]
    saved = {key: os.environ.get(key) for key in ("RAY_TMPDIR", "RAY_AUTH_TOKEN_PATH")}
    os.environ["RAY_TMPDIR"] = str(workdir / "ray")
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(workdir / "ray-token")
    local = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    local.add_node(num_cpus=1)
    connect(local.address)
    try:
        yield local
    finally:
        serve.shutdown()
        ray.shutdown()
        local.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert [path.exists() for path in outside] == existed, "Ray wrote outside the test's folder"


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    return _reuters(1500)


@pytest.fixture(scope="module")
def indexes(workdir: Path, corpus: list[Article]) -> tuple[Path, LedeIndex]:
    """The same articles in 3 shards (served by the cluster) and in one index (reference)."""
    embedder = HashingEmbedder(dimension=64)
    with ShardedIndex.create(workdir / "sharded", 3, embedder=embedder, settings=SETTINGS) as index:
        index.add(corpus, batch_size=500)
    one = LedeIndex.create(workdir / "one", embedder=embedder, settings=SETTINGS)
    one.add(corpus, batch_size=500)
    return workdir / "sharded", one


def test_shard_actors_answer_as_one_index_before_and_after_writes(
    cluster: Cluster, indexes: tuple[Path, LedeIndex], corpus: list[Article]
) -> None:
    path, one = indexes
    placed = ray_shards.start(path, name="equality")
    try:
        nodes = {ray.get(actor.node.remote()) for actor in placed.shard_actors}
        assert len(nodes) == 2  # spread over both nodes
        index = ray_shards.ClusterIndex(placed.spec)
        queries = [a.title for a in corpus[::150] if a.title] + ["cocoa", "oil prices opec"]
        assert _retrievals(index, queries) == _retrievals(one, queries)
        changed = [a.model_copy(update={"text": a.text + " Cocoa rose."}) for a in corpus[3:40:4]]
        new = Article(id="cluster-new", title="Lantern ferry", text="The Lantern ferry sails.")
        for target in (index, one):
            target.add([*changed, new])
            assert target.delete([a.id for a in corpus[50:70]]) == [a.id for a in corpus[50:70]]
        assert _retrievals(index, queries) == _retrievals(one, queries)
        index.close()
    finally:
        placed.stop()


def _search(url: str, query: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}/search", params={"query": query, **params}, timeout=60)


def test_serve_replicas_search_write_survive_a_killed_shard_and_report_a_dead_one(
    cluster: Cluster, indexes: tuple[Path, LedeIndex]
) -> None:
    path, one = indexes
    served = serve_on_ray(Settings(index=path, api_keys=[KEY]), replicas=2, port=8931)
    try:
        wait_ready(served.url, timeout=120)
        engine = SearchEngine(one)
        modes: list[tuple[str, Mode]] = [("cocoa exports", "hybrid"), ("oil prices", "bm25")]
        for query, mode in modes:
            got = _search(served.url, query, mode=mode, k=5).json()["hits"]
            expected = [hit.to_json() for hit in engine.search(query, mode=mode, k=5).hits]
            assert got == expected
        layout = read_layout(path)
        victim = 1
        article_id = next(f"ferry-{n}" for n in range(100) if layout.shard_of(f"ferry-{n}") == 1)
        body = {"id": article_id, "title": "Ferry", "text": "The Quillon ferry leaves at six."}
        headers = {"Authorization": f"Bearer {KEY}"}
        written = httpx.post(f"{served.url}/articles", json=body, headers=headers, timeout=60)
        assert written.status_code == 200, written.text
        assert _search(served.url, "Quillon ferry", k=1).json()["hits"][0]["article_id"] == (
            article_id
        )
        pid = ray.get(served.cluster.shard_actors[victim].pid.remote())
        os.kill(pid, signal.SIGKILL)  # acknowledged above: it must be there after the restart
        deadline = time.monotonic() + 60
        while True:
            found = _search(served.url, "Quillon ferry", k=1)
            if found.status_code == 200 or time.monotonic() > deadline:
                break
            assert found.status_code == 503
            assert found.json()["error"]["code"] == "shard_unavailable"
            time.sleep(0.5)
        assert found.status_code == 200 and found.json()["hits"][0]["article_id"] == article_id
        assert ray.get(served.cluster.shard_actors[victim].pid.remote()) != pid
        ray.kill(served.cluster.shard_actors[0], no_restart=True)
        down = _search(served.url, "Quillon ferry", k=1)
        assert down.status_code == 503
        error = down.json()["error"]
        assert error["code"] == "shard_unavailable" and "shard-000" in error["message"]
        partial = _search(served.url, "Quillon ferry", k=3, allow_partial="true")
        assert partial.status_code == 200, partial.text
        assert partial.json()["partial"] == {"missing_shards": ["shard-000"]}
        assert partial.json()["hits"][0]["article_id"] == article_id  # in shard-001
        assert all(layout.shard_of(hit["article_id"]) != 0 for hit in partial.json()["hits"])
    finally:
        served.stop()


def _start_tick(pid: int) -> int:
    """When a process started, in clock ticks since boot (field 22 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[19])


def test_lede_serve_on_ray_is_a_serving_job_whose_replicas_leave_out_pandas_and_pyarrow(
    cluster: Cluster, workdir: Path, corpus: list[Article]
) -> None:
    """The real command, `lede serve --ray ADDRESS`, joins the cluster as a job of its own whose
    workers start without pandas and pyarrow (decision 46), and serves the same hits as one
    index and answers questions."""
    embedder = HashingEmbedder(dimension=64)
    path = workdir / "served-by-the-command"
    with ShardedIndex.create(path, 2, embedder=embedder, settings=SETTINGS) as index:
        index.add(corpus[:300], batch_size=300)
    one = LedeIndex.create(
        workdir / "served-by-the-command-one", embedder=embedder, settings=SETTINGS
    )
    one.add(corpus[:300], batch_size=300)
    serve.shutdown()  # Serve's HTTP proxy belongs to the cluster: the command starts its own
    url = "http://127.0.0.1:8932"
    log = (workdir / "serve-job.log").open("w")
    command = [LEDE, "serve", "--index", str(path), "--ray", cluster.address, "--port", "8932"]
    job = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_ready(url, timeout=180, process=job)
        except (TimeoutError, RuntimeError) as error:
            log.flush()
            tail = (workdir / "serve-job.log").read_text()[-3000:]
            raise AssertionError(f"`lede serve --ray` did not come up:\n{tail}") from error
        engine = SearchEngine(one)
        got = _search(url, "cocoa exports", mode="hybrid", k=5).json()
        expected = [hit.to_json() for hit in engine.search("cocoa exports", k=5).hits]
        assert got["hits"] == expected
        answered = httpx.post(f"{url}/answer", json={"question": "Who exports cocoa?"}, timeout=120)
        assert answered.status_code == 200, answered.text
        started = _start_tick(job.pid)
        replicas = [
            pid for pid in processes_titled("ray::ServeReplica") if _start_tick(pid) >= started
        ]
        assert replicas, "no replica of the job's application"
        for pid in replicas:
            memory = process_memory(pid)
            assert not memory["pyarrow_loaded"] and not memory["torch_loaded"], memory
    finally:
        job.send_signal(signal.SIGINT)
        try:
            job.wait(timeout=60)
        except subprocess.TimeoutExpired:
            job.kill()
        log.close()


def test_bulk_indexing_on_ray_equals_one_process_and_a_rerun_skips_what_was_stored(
    cluster: Cluster, workdir: Path, corpus: list[Article]
) -> None:
    from lede.indexer.cluster.ingest import index_on_ray

    embedder = HashingEmbedder(dimension=64)
    articles = corpus[:600]
    with ShardedIndex.create(workdir / "bulk-reference", 3, embedder=embedder) as reference:
        reference.add(articles)
        with ShardedIndex.create(workdir / "bulk", 3, embedder=embedder) as bulk:
            # Seven batches in jobs of at most three (the driver's read-ahead window).
            first = index_on_ray(bulk, articles[:400], workers=2, batch_size=64, window=3)
            assert (first.added, first.unchanged) == (400, 0)
            # A job stopped after 400 articles, run again over all of them: the 400 stored
            # are skipped, the rest are added, and nothing is there twice.
            again = index_on_ray(bulk, articles, workers=2, batch_size=64)
            assert (again.added, again.unchanged, again.updated) == (200, 400, 0)
            assert bulk.stats()["chunks"] == reference.stats()["chunks"]
            queries = [a.title for a in articles[::60] if a.title]
            assert _retrievals(bulk, queries) == _retrievals(reference, queries)
            changed = [articles[7].model_copy(update={"text": articles[7].text + " More."})]
            updated = index_on_ray(bulk, changed, workers=1)
            reference.add(changed)
            assert (updated.updated, updated.added) == (1, 0)
            assert _retrievals(bulk, queries) == _retrievals(reference, queries)


def _stored_articles(index_dir: Path) -> int:
    """Articles committed to the shards' databases so far (read while a job writes)."""
    total = 0
    for database in sorted(index_dir.glob("shard-*/lede.sqlite")):
        uri = f"file:{database}?mode=ro"
        with (
            contextlib.closing(sqlite3.connect(uri, uri=True)) as db,
            contextlib.suppress(sqlite3.OperationalError),  # no schema there yet
        ):
            total += int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    return total


def _by_chunk(index: ShardedIndex, query: str, view: str) -> list[tuple[float, tuple[str, int]]]:
    """A view's top 50 as (score, (article id, chunk ordinal)): what a chunk is, not its id."""
    ranked = index.retrieve(RetrievalRequest(query, (view,), 50)).lists[view]
    records = index.records(list(ranked.ids))
    return [
        (score, (records[i].article_id, records[i].ordinal))
        for i, score in zip(ranked.ids, ranked.scores, strict=True)
    ]


def test_a_bulk_indexing_job_killed_midway_is_run_again_without_duplicates(
    cluster: Cluster, workdir: Path, corpus: list[Article]
) -> None:
    """`lede index --ray` killed with SIGKILL after its first articles were committed, then the
    same command again: it completes, skips what was stored, stores every article once, and
    its chunks score as a one-process build's do."""
    source = workdir / "killed-corpus.jsonl"
    source.write_text(
        "".join(json.dumps(a.model_dump(mode="json", exclude_none=True)) + "\n" for a in corpus)
    )
    target, one_process = workdir / "killed", workdir / "killed-reference"
    options = ["--shards", "3", "--batch-size", "50", "--model", "lede/hashing-64", "--json"]
    on_ray = ["--ray", cluster.address, "--workers", "2"]
    command = [LEDE, "index", str(source), "--index", str(target), *options, *on_ray]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    stored = 0
    while job.poll() is None and time.monotonic() < deadline:
        stored = _stored_articles(target) if target.exists() else 0
        if stored:
            break
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.communicate(timeout=30)
    assert job.returncode == -signal.SIGKILL, "the job ended before it could be killed midway"
    assert 0 < stored < len(corpus)

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["unchanged"] >= stored and report["added"] == len(corpus) - report["unchanged"]
    built = subprocess.run(
        [LEDE, "index", str(source), "--index", str(one_process), *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    embedder = HashingEmbedder(dimension=64)
    with (
        ShardedIndex.open(target, embedder=embedder) as rerun,
        ShardedIndex.open(one_process, embedder=embedder) as reference,
    ):
        assert rerun.stats()["articles"] == len(corpus)
        assert rerun.stats()["chunks"] == reference.stats()["chunks"]
        # The same chunks score the same: a batch is one transaction per shard, so the killed
        # job had stored part of one (its articles in some shards), and the re-run numbered the
        # rest of that batch after it. Chunk ids, and so the order of tied scores, may differ.
        for query in [a.title for a in corpus[::150] if a.title]:
            for view in ("bm25", "dense"):
                ours, theirs = (_by_chunk(i, query, view) for i in (rerun, reference))
                assert [score for score, _ in ours] == [score for score, _ in theirs]
                cut = ours[-1][0]
                assert {key for s, key in ours if s > cut} == {key for s, key in theirs if s > cut}


class TestClusterIndex(test_sharded_contract.TestShardedIndex):
    """`ClusterIndex` (shard actors on the two-node cluster, writes through the writer actor)
    passes the searchable-index contract, as `LedeIndex` and `ShardedIndex` do: the same three
    shards as `TestShardedIndex` builds, served by the cluster."""

    _names = itertools.count()

    @pytest.fixture(autouse=True)
    def _actors(self, cluster: Cluster) -> Iterator[None]:
        self.placed: list[ray_shards.Cluster] = []
        yield
        for placed in self.placed:
            placed.stop()

    def build(self, folder: Path, articles: Sequence[Article]) -> SearchableIndex:
        built = super().build(folder, articles)
        assert isinstance(built, ShardedIndex)
        built.close()  # the actors open the shards
        placed = ray_shards.start(folder, name=f"contract-{next(self._names)}")
        self.placed.append(placed)
        return ray_shards.ClusterIndex(placed.spec, embedder=embedder())

    def write(
        self, index: SearchableIndex, articles: Sequence[Article], deletes: Sequence[str]
    ) -> None:
        """The cluster's writes honour `add`'s options as one index's do: batches of the size
        asked, `on_batch` after each, the progress of each, and the checkpoint left out."""
        if not isinstance(index, ray_shards.ClusterIndex):
            super().write(index, articles, deletes)
            return
        seen: list[dict[str, int]] = []
        progress = CountingProgress()
        report = index.add(
            articles,
            batch_size=1,
            on_batch=lambda report: seen.append(report.counts()),
            progress=progress,
            checkpoint=False,
        )
        assert len(seen) == len(articles) and seen[-1] == report.counts()
        assert progress.stored == len(articles) and progress.embedded == report.embedded
        assert report.added + report.updated + report.unchanged == len(articles)
        index.delete(deletes)


class CountingProgress:
    """A `Progress` that counts what it is told."""

    def __init__(self) -> None:
        self.stored = self.embedded = 0

    def chunks(self, count: int, batch_articles: int, batch_texts: int) -> None:
        self.embedded += count

    def articles(self, count: int) -> None:
        self.stored += count
