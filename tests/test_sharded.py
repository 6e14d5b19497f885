"""A sharded index directory: its layout, equality with one index at Reuters scale (BM25 with
length normalization, where each shard's own statistics would differ), every command on a
sharded directory, and the HTTP service serving one."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import faiss
import httpx
import numpy as np
import pytest

from lede.eval.datasets import SHARED_DATASETS, load_beir
from lede.eval.local_server import run_lede as lede
from lede.eval.relevance import RelevanceConfig, evaluate_dataset
from lede.indexer.directory import create_index, open_index
from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.errors import IndexFormatError, ShardUnavailableError
from lede.indexer.filters import Filters
from lede.indexer.index import LedeIndex
from lede.indexer.manifest import IndexSettings
from lede.indexer.models import Article
from lede.indexer.ranked import RankedList
from lede.indexer.searchable import RetrievalRequest
from lede.indexer.shards.layout import LAYOUT_NAME, ShardLayout, bucket_of, read_layout
from lede.indexer.shards.sharded import ShardedIndex, merge_ranked
from lede.indexer.sources import Skipped, read_source
from lede.indexer.views import dense_search as dense
from lede.indexer.views.dense_search import DenseIndex, Tier
from lede.indexer.views.lexical import BM25Settings
from lede.service.engine import MODES, SearchEngine
from lede.service.settings import Settings
from tests.conftest import EXAMPLES
from tests.server import running_server
from tests.test_cli import lede_json

REUTERS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "reuters21578"


def dense_of(index: Any) -> DenseIndex:
    view: Any = index.views["dense"]
    return view.dense  # type: ignore[no-any-return]


def faiss_quantizer(index: DenseIndex) -> np.ndarray:
    """The IVF's centroids."""
    stored: Any = index._index
    refine: Any = faiss.downcast_index(stored.index)
    ivf: Any = faiss.downcast_index(refine.base_index)
    flat: Any = faiss.downcast_index(ivf.quantizer)
    return np.asarray(faiss.rev_swig_ptr(flat.get_xb(), ivf.nlist * ivf.d))


def test_buckets_are_stable_and_dealt_evenly() -> None:
    assert bucket_of("mi7-rome-cruise-atwell") == bucket_of("mi7-rome-cruise-atwell")
    assert bucket_of("a") == 559  # BLAKE2b-64 of the id, mod 4096: the same on every machine
    layout = ShardLayout.even(3)
    assert len(layout.bucket_shards) == 4096
    assert [layout.bucket_shards.count(shard) for shard in range(3)] == [1366, 1365, 1365]
    with pytest.raises(ValueError, match="--shards must be within"):
        ShardLayout.even(0)


def test_a_damaged_layout_is_named_and_a_layout_is_never_changed(tmp_path: Path) -> None:
    embedder = HashingEmbedder(dimension=32)
    ShardedIndex.create(tmp_path / "index", 2, embedder=embedder).close()
    with pytest.raises(IndexFormatError, match="has 2 shards, not 3"):
        ShardedIndex.create(tmp_path / "index", 3, embedder=embedder)
    LedeIndex.create(tmp_path / "single", embedder=embedder).close()
    with pytest.raises(IndexFormatError, match="an index of one shard"):
        ShardedIndex.create(tmp_path / "single", 2, embedder=embedder)
    (tmp_path / "index" / LAYOUT_NAME).write_text('{"format": "lede-sharded-index"}')
    with pytest.raises(IndexFormatError, match=r"shards\.json"):
        read_layout(tmp_path / "index")


def test_merging_keeps_ties_on_the_lower_id_and_says_when_cut_off() -> None:
    parts = [RankedList([4, 9], [2.0, 1.0], False, 2), RankedList([3, 7], [2.0, 1.0], False, 2)]
    merged = merge_ranked(parts, 3)
    assert (list(merged.ids), list(merged.scores)) == ([3, 4, 7], [2.0, 2.0, 1.0])
    assert merged.truncated and merged.matched == 4
    assert not merge_ranked(parts, 5).truncated


def _reuters(limit: int) -> list[Article]:
    items = read_source(REUTERS / "corpus.jsonl")
    articles = [item for item in itertools.islice(items, limit) if not isinstance(item, Skipped)]
    return [a.model_copy(update={"tags": (f"t{i % 5}",)}) for i, a in enumerate(articles)]


def _retrievals(index: Any, queries: list[str]) -> list[Any]:
    found: list[Any] = []
    for query, filters in itertools.product(queries, (None, Filters(tags=("t1", "t3")))):
        for views in (("bm25",), ("dense",), ("bm25", "dense")):
            request = RetrievalRequest(query, views, 50, filters=filters, count="articles")
            retrieval = index.retrieve(request)
            found.append(
                (
                    {name: (list(r.ids), list(r.scores)) for name, r in retrieval.lists.items()},
                    retrieval.total,
                )
            )
        engine = SearchEngine(index)
        for mode in MODES:
            hits = engine.search(query, mode=mode, k=10, filters=filters).hits
            found.append([(hit.record.chunk_id, hit.score) for hit in hits])
    return found


@pytest.mark.skipif(not REUTERS.exists(), reason="needs ../shared/datasets/reuters21578")
@pytest.mark.slow
def test_four_shards_equal_one_index_of_three_thousand_reuters_articles(tmp_path: Path) -> None:
    articles = _reuters(3000)
    settings = IndexSettings(bm25=BM25Settings(k1=1.2, b=0.75))
    embedder = HashingEmbedder(dimension=64)
    one = LedeIndex.create(tmp_path / "one", embedder=embedder, settings=settings)
    sharded = ShardedIndex.create(tmp_path / "four", 4, embedder=embedder, settings=settings)
    queries = [a.title for a in articles[::97] if a.title] + ["cocoa", "oil prices opec"]
    for index in (one, sharded):
        index.add(articles, batch_size=700)
    assert _retrievals(sharded, queries) == _retrievals(one, queries)
    changed = [a.model_copy(update={"text": a.text + " Cocoa rose."}) for a in articles[5:60:5]]
    for index in (one, sharded):
        index.add(changed)
        index.delete([a.id for a in articles[100:160]])
    assert _retrievals(sharded, queries) == _retrievals(one, queries)
    sharded.close()
    with ShardedIndex.open(tmp_path / "four", embedder=embedder) as reopened:
        assert _retrievals(reopened, queries) == _retrievals(one, queries)
    one.close()


def test_open_and_create_index_pick_the_layout(tmp_path: Path) -> None:
    embedder = HashingEmbedder(dimension=32)
    with create_index(tmp_path / "sharded", shards=2, embedder=embedder) as index:
        assert isinstance(index, ShardedIndex)
    with create_index(tmp_path / "sharded", embedder=embedder) as index:
        assert isinstance(index, ShardedIndex) and index.layout.shards == 2
    with open_index(tmp_path / "sharded", embedder=embedder) as index:
        assert isinstance(index, ShardedIndex)
    with create_index(tmp_path / "single", embedder=embedder) as index:
        assert isinstance(index, LedeIndex)


@pytest.fixture(scope="module")
def sharded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sharded") / "index"
    report = lede_json(
        "index", str(EXAMPLES / "articles.jsonl"), "--index", str(path), "--shards", "3"
    )
    assert report["added"] == 43
    return path


@pytest.mark.model
@pytest.mark.slow
def test_every_command_works_on_a_sharded_directory_as_on_one_index(
    sharded_dir: Path, sample_index_dir: Path, tmp_path: Path
) -> None:
    info = lede_json("info", "--index", str(sharded_dir))
    assert info["layout"]["shards"] == 3 and info["counts"]["articles"] == 43
    assert sum(shard["counts"]["chunks"] for shard in info["shards"]) == info["counts"]["chunks"]
    for mode in MODES:
        args = ["search", "Who plays Ethan Hunt?", "--mode", mode, "-k", "5", "--index"]
        assert (
            lede_json(*args, str(sharded_dir))["hits"]
            == (lede_json(*args, str(sample_index_dir))["hits"])
        )
    for threshold in ([], ["--threshold", "0"]):  # the default abstains on it (confidence 0.5)
        args = ["ask", "Who plays Ethan Hunt?", *threshold, "--index"]
        answer, single = (lede_json(*args, str(path)) for path in (sharded_dir, sample_index_dir))
        assert answer.pop("took_ms") >= 0 and single.pop("took_ms") >= 0 and answer == single
    assert answer["citations"][0]["article_id"] == "mi7-rome-cruise-atwell"
    wrong = lede(
        "index", str(EXAMPLES / "articles.jsonl"), "--index", str(sharded_dir), "--shards", "2"
    )
    assert wrong.returncode == 2 and "has 3 shards, not 2" in wrong.stderr
    repaired = lede("repair", "--index", str(sharded_dir))
    assert repaired.returncode == 0 and "43 articles" in repaired.stdout
    deleted = lede("delete", "rome-film-tourism", "nope", "--index", str(sharded_dir), "--json")
    assert deleted.returncode == 1  # as for one index: an id was not there
    assert json.loads(deleted.stdout) == {"deleted": 1, "missing": ["nope"]}


@pytest.mark.model
@pytest.mark.server
def test_the_service_serves_a_sharded_index_and_its_writes_survive_a_restart(
    sharded_dir: Path,
) -> None:
    headers = {"Authorization": f"Bearer {'k' * 24}"}
    article = {
        "id": "lantern-ferry",
        "title": "A ferry to Lantern Island",
        "text": "The ferry to Lantern Island leaves at six every morning."
        " Tickets cost four pounds.",
    }
    with running_server(Settings(index=sharded_dir, api_keys=["k" * 24])) as url:
        written = httpx.post(f"{url}/articles", json=article, headers=headers, timeout=60)
        assert written.status_code in (200, 201), written.text
        hits = httpx.get(f"{url}/search", params={"query": "Lantern Island ferry"}, timeout=60)
        assert hits.json()["hits"][0]["article_id"] == "lantern-ferry"
    with running_server(Settings(index=sharded_dir)) as url:
        hits = httpx.get(f"{url}/search", params={"query": "Lantern Island ferry"}, timeout=60)
        assert hits.json()["hits"][0]["article_id"] == "lantern-ferry"
    owner = ShardLayout.even(3).shard_of("lantern-ferry")
    with LedeIndex.open(sharded_dir / ShardLayout.shard_name(owner)) as shard:
        assert shard.article("lantern-ferry") is not None


def test_serve_on_ray_refuses_an_index_of_one_shard(tmp_path: Path) -> None:
    LedeIndex.create(tmp_path / "single", embedder=HashingEmbedder(dimension=32)).close()
    completed = lede("serve", "--index", str(tmp_path / "single"), "--ray", "local", "--port", "0")
    assert completed.returncode == 2
    assert "--ray serves a sharded index" in completed.stderr


class _DownShard:
    """A shard that never answers (what a dead shard actor looks like to its proxy)."""

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise ShardUnavailableError([1], "down for the test")

        return call


def test_a_shard_that_is_down_fails_the_query_unless_partial_results_are_allowed(
    tmp_path: Path, sample_articles: list[Article]
) -> None:
    embedder = HashingEmbedder(dimension=32)
    with ShardedIndex.create(tmp_path / "index", 3, embedder=embedder) as index:
        index.add(sample_articles)
        shards = [index.shards[0], _DownShard(), index.shards[2]]
        degraded = ShardedIndex(index.path, index.layout, index.manifest, shards, embedder)
        engine = SearchEngine(degraded)
        with pytest.raises(ShardUnavailableError, match="shard-001 is unavailable"):
            engine.search("Rome", k=5)
        result = engine.search("Rome", k=5, allow_partial=True)
        assert result.missing_shards == ["shard-001"]
        assert result.to_json()["partial"] == {"missing_shards": ["shard-001"]}
        assert result.hits and all(
            index.layout.shard_of(h.record.article_id) != 1 for h in result.hits
        )
        assert "partial" not in SearchEngine(index).search("Rome", k=5).to_json()


@pytest.mark.skipif(not (SHARED_DATASETS / "cisi").exists(), reason="needs ../shared/datasets")
@pytest.mark.slow
def test_relevance_evaluation_of_a_sharded_index_gives_the_same_runs(tmp_path: Path) -> None:
    dataset = load_beir(SHARED_DATASETS / "cisi")
    embedder = HashingEmbedder(dimension=64)
    figures = {}
    for shards in (None, 3):
        runs = tmp_path / f"runs-{shards}"
        config = RelevanceConfig(shards=shards)
        result = evaluate_dataset(dataset, config, tmp_path / "cache", embedder, runs_dir=runs)
        assert result["settings"]["shards"] == shards
        figures[shards] = result["metrics"]
    assert figures[None] == figures[3]
    for single in sorted((tmp_path / "runs-None").iterdir()):
        assert single.read_bytes() == (tmp_path / "runs-3" / single.name).read_bytes()


def _recall_at_10(index: Any, queries: list[str], truth: dict[str, set[int]]) -> float:
    found = 0
    for query in queries:
        retrieval = index.retrieve(RetrievalRequest(query, ("dense",), 10))
        found += len(truth[query] & set(retrieval.lists["dense"].ids))
    return found / (10 * len(queries))


@pytest.mark.skipif(not REUTERS.exists(), reason="needs ../shared/datasets/reuters21578")
@pytest.mark.slow
def test_an_approximate_tier_is_chosen_for_the_whole_corpus_and_trained_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the corpus above the IVF threshold (lowered here, so that 3,000 articles cross it)
    every shard starts from one quantizer trained on the sample one index trains on, even
    though no shard alone is above the threshold; recall@10 is at least one index's."""
    ivf = "IVF32,PQ{pq}x4fs,Refine(SQ8)"
    monkeypatch.setattr(dense, "AUTO_TIERS", (Tier(5_000, ivf, nprobe=4), Tier(0, "Flat")))
    articles = _reuters(3000)
    embedder = HashingEmbedder(dimension=64)
    one = LedeIndex.create(tmp_path / "one", embedder=embedder)
    sharded = ShardedIndex.create(tmp_path / "four", 4, embedder=embedder)
    for index in (one, sharded):
        index.add(articles, batch_size=700)
    chunks = one.stats()["chunks"]
    assert all(shard.stats()["chunks"] < 5_000 < chunks for shard in sharded.shards)
    factory = ivf.format(pq=16)
    assert dense_of(one).factory == factory
    assert sharded.layout.dense_template == factory == read_layout(tmp_path / "four").dense_template
    quantizers = [faiss_quantizer(dense_of(shard)) for shard in sharded.shards]
    for centroids in quantizers:  # one quantizer, the one index's
        np.testing.assert_array_equal(centroids, quantizers[0])
    np.testing.assert_allclose(quantizers[0], faiss_quantizer(dense_of(one)), atol=1e-5)

    ids = np.asarray(sorted(one.views["dense"].live_ids()), dtype=np.int64)
    stored = one.store.embeddings(ids.tolist())
    queries = [a.title for a in articles[::23] if a.title]
    truth = {
        query: set(ids[np.argsort(-(stored @ embedder.embed([query])[0]))[:10]].tolist())
        for query in queries
    }
    recall_one, recall_sharded = (_recall_at_10(i, queries, truth) for i in (one, sharded))
    assert recall_one < 1.0  # approximate indeed
    assert recall_sharded >= recall_one, (recall_sharded, recall_one)

    sharded.close()
    with ShardedIndex.open(tmp_path / "four", embedder=embedder) as reopened:
        assert all(dense_of(shard).factory == factory for shard in reopened.shards)
        assert _recall_at_10(reopened, queries, truth) == recall_sharded
        # Below the threshold again: the template goes, every shard is exact, equal to one index.
        gone = [a.id for a in articles[: 2 * len(articles) // 3]]
        for index in (one, reopened):
            index.delete(gone)
            index.checkpoint_if_due()
        assert one.stats()["chunks"] < 5_000
        assert reopened.layout.dense_template is None
        assert all(dense_of(shard).factory == "Flat" for shard in reopened.shards)
        assert dense_of(one).factory == "Flat"
        assert _retrievals(reopened, queries[:5]) == _retrievals(one, queries[:5])
    one.close()
