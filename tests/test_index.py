"""The index directory: incremental writes, reconciliation, manifest checks, repair."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.errors import IndexFormatError, InvalidArticleError
from lede.indexer.filters import Filters
from lede.indexer.index import LedeIndex
from lede.indexer.manifest import IndexSettings
from lede.indexer.models import Article
from lede.indexer.views.dense_search import Tier
from lede.indexer.views.lexical import BM25Settings
from lede.service.engine import SearchEngine
from tests.views import dense_of, lexical_of


def _ids(index: LedeIndex, query: str, mode: str = "hybrid", k: int = 10) -> list[str]:
    result = SearchEngine(index).search(query, mode=mode, k=k)  # type: ignore[arg-type]
    return [hit.record.chunk_id for hit in result.hits]


def _consistent(index: LedeIndex) -> set[int]:
    """Every view holds exactly SQLite's live chunks; returns them."""
    live = set(index.store.live_rowids().tolist())
    assert set(lexical_of(index).doc_ids) == live
    assert set(dense_of(index).live_ids().tolist()) == live
    assert set(np.flatnonzero(index.catalog.live).tolist()) == live
    return live


def test_add_update_unchanged_and_embedding_reuse(
    fake_index: LedeIndex, sample_articles: list[Article]
) -> None:
    first = fake_index.add(sample_articles)
    assert (first.added, first.updated, first.unchanged) == (len(sample_articles), 0, 0)
    assert first.embedded == first.chunks
    again = fake_index.add(sample_articles)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(sample_articles))
    assert again.embedded == 0
    changed = sample_articles[0].model_copy(update={"tags": ("new-tag",)})
    update = fake_index.add([changed])
    assert (update.updated, update.embedded) == (1, 0)  # same text and title: vectors reused
    edited = sample_articles[1].model_copy(update={"text": sample_articles[1].text + " Extra."})
    assert fake_index.add([edited]).updated == 1
    assert fake_index.store.get_article(edited.id) == edited
    _consistent(fake_index)


def test_incremental_index_equals_a_fresh_build(
    tmp_path: Path, fake_embedder: HashingEmbedder, sample_articles: list[Article]
) -> None:
    incremental = LedeIndex.create(tmp_path / "inc", embedder=fake_embedder)
    incremental.add(sample_articles[:20])
    incremental.add(
        [a.model_copy(update={"text": "Placeholder text."}) for a in sample_articles[20:30]]
    )
    incremental.add(sample_articles[20:])
    incremental.delete([a.id for a in sample_articles[:5]])
    fresh = LedeIndex.create(tmp_path / "fresh", embedder=fake_embedder)
    fresh.add(sample_articles[5:])
    for query in ["Tom Cruise car chase", "interest rates", "wind turbines power homes"]:
        for mode in ("bm25", "dense", "hybrid"):
            assert _ids(incremental, query, mode) == _ids(fresh, query, mode)
    assert incremental.store.counts() == fresh.store.counts()


def test_delete_removes_from_every_view_and_reopen_reconciles(
    tmp_path: Path, fake_embedder: HashingEmbedder, sample_articles: list[Article]
) -> None:
    path = tmp_path / "index"
    index = LedeIndex.create(path, embedder=fake_embedder)
    index.add(sample_articles)
    assert index.delete(["mi7-rome-cruise-atwell", "no-such-id"]) == ["mi7-rome-cruise-atwell"]
    assert all(not c.startswith("mi7-rome") for c in _ids(index, "Tom Cruise Rome", "bm25"))
    live = _consistent(index)
    index.close()
    reopened = LedeIndex.open(path, embedder=fake_embedder)  # views replayed past checkpoint
    assert _consistent(reopened) == live
    assert dense_of(reopened).tombstones == dense_of(reopened).ntotal - len(live) > 0


def test_other_process_writes_become_visible_on_refresh(
    tmp_path: Path, fake_embedder: HashingEmbedder, sample_articles: list[Article]
) -> None:
    path = tmp_path / "index"
    writer = LedeIndex.create(path, embedder=fake_embedder)
    writer.add(sample_articles[:10])
    reader = LedeIndex.open(path, embedder=fake_embedder)
    writer.add(sample_articles[10:], checkpoint=False)
    writer.delete([sample_articles[0].id])
    assert reader.refresh() > 0
    assert _consistent(reader) == _consistent(writer)


def test_filters_apply_inside_both_retrievers(
    fake_index: LedeIndex, sample_articles: list[Article]
) -> None:
    fake_index.add(sample_articles)
    engine = SearchEngine(fake_index)
    filters = Filters(sources=("Sports Desk",))
    sports = [a for a in sample_articles if a.source == "Sports Desk"]
    for mode in ("bm25", "dense", "hybrid"):
        hits = engine.search("record win", mode=mode, k=len(sports), filters=filters).hits  # type: ignore[arg-type]
        assert {h.record.source for h in hits} == {"Sports Desk"}
        if mode != "bm25":  # every allowed chunk is a dense candidate
            assert len(hits) == len(sports)
    since = Filters(tags=("film",), since=datetime(2020, 10, 15, tzinfo=UTC))
    hits = engine.search("film", mode="dense", k=50, filters=since).hits
    assert hits
    assert all("film" in h.record.tags and str(h.record.published_at) >= "2020-10-15" for h in hits)


def test_an_index_keeps_the_bm25_settings_it_was_created_with(
    tmp_path: Path, fake_embedder: HashingEmbedder, sample_articles: list[Article]
) -> None:
    """A default that changes later (b 0.75 -> 0) does not change an existing index's scores."""
    path = tmp_path / "index"
    classic = IndexSettings(bm25=BM25Settings(k1=1.2, b=0.75))
    created = LedeIndex.create(path, embedder=fake_embedder, settings=classic)
    created.add(sample_articles)
    before = lexical_of(created).search("film festival in Venice", 10)
    created.checkpoint()
    created.close()
    reopened = LedeIndex.open(path, embedder=fake_embedder)
    assert lexical_of(reopened).settings == BM25Settings(k1=1.2, b=0.75) != BM25Settings()
    after = lexical_of(reopened).search("film festival in Venice", 10)
    assert after[0].tolist() == before[0].tolist() and after[1].tolist() == before[1].tolist()
    reopened.close()


def test_manifest_refuses_other_model_and_bad_schema(
    tmp_path: Path, fake_embedder: HashingEmbedder, sample_articles: list[Article]
) -> None:
    path = tmp_path / "index"
    LedeIndex.create(path, embedder=fake_embedder).add(sample_articles[:2])
    other = LedeIndex.open(path, embedder=HashingEmbedder(dimension=32))
    with pytest.raises(IndexFormatError, match="built with 'lede/hashing-64'"):
        other.add([sample_articles[3]])
    manifest = path / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"schema_version": 1', '"schema_version": 99'))
    with pytest.raises(IndexFormatError, match="schema version 99 is not supported"):
        LedeIndex.open(path, embedder=fake_embedder)
    with pytest.raises(IndexFormatError, match="is not a Lede index"):
        LedeIndex.open(tmp_path / "missing", embedder=fake_embedder)


def test_corrupt_checkpoint_is_refused_and_repair_rebuilds(
    tmp_path: Path, fake_embedder: HashingEmbedder, sample_articles: list[Article]
) -> None:
    path = tmp_path / "index"
    index = LedeIndex.create(path, embedder=fake_embedder)
    index.add(sample_articles)
    before = _ids(index, "Mission Impossible release", "hybrid")
    index.close()
    next(path.glob("dense-*.faiss")).write_bytes(b"garbage")
    with pytest.raises(IndexFormatError, match="lede repair"):
        LedeIndex.open(path, embedder=fake_embedder)
    for checkpoint in path.glob("bm25-*.npz"):
        checkpoint.unlink()  # a missing view is rebuilt on open
    from lede.indexer.index import DATABASE_NAME
    from lede.indexer.manifest import read_manifest
    from lede.indexer.store import Store

    broken = LedeIndex(path, read_manifest(path), Store(path / DATABASE_NAME), fake_embedder)
    with broken.writing():
        broken.repair()
    repaired = LedeIndex.open(path, embedder=fake_embedder)
    assert _ids(repaired, "Mission Impossible release", "hybrid") == before


def test_duplicate_ids_in_one_batch_are_refused_without_losing_data(
    fake_index: LedeIndex, sample_articles: list[Article]
) -> None:
    fake_index.add(sample_articles[:3])
    with pytest.raises(InvalidArticleError, match="appears twice"):
        fake_index.add([sample_articles[5], sample_articles[5]])
    assert fake_index.store.counts()["articles"] == 3


def test_auto_factory_moves_to_ivf_when_the_index_grows(
    tmp_path: Path, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crossing a size tier at a checkpoint rebuilds the dense view from SQLite (real FAISS)."""
    monkeypatch.setattr(
        "lede.indexer.views.dense_search.AUTO_TIERS",
        (Tier(700, "IVF16,SQ8", nprobe=16), Tier(0, "Flat")),
    )
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    articles = [
        Article(id=f"a{i}", title=f"{words[i % 12]} {i}", text=f"{words[i % 7]} story {i}.")
        for i in range(800)
    ]
    index = LedeIndex.create(tmp_path / "index", embedder=fake_embedder)
    index.add(articles[:600])
    assert dense_of(index).factory == "Flat"
    exact = _ids(index, "gamma story 5", mode="dense", k=1)
    index.add(articles[600:])
    assert dense_of(index).factory == "IVF16,SQ8"
    _consistent(index)
    index.close()
    reopened = LedeIndex.open(tmp_path / "index", embedder=fake_embedder)
    assert dense_of(reopened).factory == "IVF16,SQ8"
    assert exact[0] in _ids(reopened, "gamma story 5", mode="dense", k=5)  # SQ8 is approximate
    reopened.repair()
    assert dense_of(reopened).factory == "IVF16,SQ8"
    _consistent(reopened)
    reopened.close()


def test_an_index_stored_in_an_older_tier_format_moves_to_the_current_one(
    tmp_path: Path, fake_embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexes saved with an earlier version's "auto" tier (plain IVF-SQ8) switch to the
    current tier's format (here refined fast-scan PQ) at their next write, from SQLite."""
    monkeypatch.setattr(
        "lede.indexer.views.dense_search.AUTO_TIERS",
        (Tier(700, "IVF16,SQ8", nprobe=16), Tier(0, "Flat")),
    )
    articles = [
        Article(id=f"a{i}", title=f"title {i}", text=f"word{i % 13} story {i}.") for i in range(801)
    ]
    index = LedeIndex.create(tmp_path / "index", embedder=fake_embedder)
    index.add(articles[:800])
    assert dense_of(index).factory == "IVF16,SQ8"
    index.close()
    refined = "IVF16,PQ16x4fs,Refine(SQ8)"
    monkeypatch.setattr(
        "lede.indexer.views.dense_search.AUTO_TIERS",
        (Tier(700, refined, nprobe=16), Tier(0, "Flat")),
    )
    reopened = LedeIndex.open(tmp_path / "index", embedder=fake_embedder)
    assert (
        dense_of(reopened).factory,
        dense_of(reopened).factory_due(),
    ) == ("IVF16,SQ8", refined)
    before = _ids(reopened, "word5 story 5", mode="dense", k=1)
    reopened.add(articles[800:])
    assert (
        dense_of(reopened).factory,
        dense_of(reopened).factory_due(),
    ) == (refined, None)
    live = _consistent(reopened)
    assert len(live) == 801
    assert before[0] in _ids(reopened, "word5 story 5", mode="dense", k=5)
    reopened.close()
    again = LedeIndex.open(tmp_path / "index", embedder=fake_embedder)
    assert (
        dense_of(again).factory,
        dense_of(again).factory_due(),
    ) == (refined, None)
    _consistent(again)
    again.close()


def test_an_index_stored_without_sentence_spans_gains_the_column_and_still_highlights(
    tmp_path: Path, fake_embedder: HashingEmbedder, sample_articles: list[Article]
) -> None:
    """Chunks keep the chunker's sentence spans; an index written before they did (no
    `sentences` column) opens, gains the column, and highlights by splitting the text again:
    the same spans as the stored ones."""
    index = LedeIndex.create(tmp_path / "index", embedder=fake_embedder)
    index.add(sample_articles)
    stored = SearchEngine(index).search("offshore wind farm homes", mode="bm25", k=5).hits
    assert all(hit.record.sentences() for hit in stored)
    index.close()
    with sqlite3.connect(tmp_path / "index" / "lede.sqlite") as connection:
        connection.execute("ALTER TABLE chunks DROP COLUMN sentences")
    old = LedeIndex.open(tmp_path / "index", embedder=fake_embedder)
    again = SearchEngine(old).search("offshore wind farm homes", mode="bm25", k=5).hits
    assert [hit.record.sentences() for hit in again] == [None] * len(again)
    assert [(h.record.chunk_id, h.highlights) for h in again] == [
        (h.record.chunk_id, h.highlights) for h in stored
    ]
    assert any(hit.highlights for hit in again)
    old.add([sample_articles[0].model_copy(update={"text": "A new text. It has two sentences."})])
    assert old.store.article_chunks(sample_articles[0].id)[0].sentences() == [(0, 11), (12, 33)]
    old.close()
