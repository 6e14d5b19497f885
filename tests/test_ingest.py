"""The ingest stages: chunking with the tokenizer alone, embedding, and the write stage."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from lede.indexer.chunker import Chunker
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder, resolve_model_path
from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.encoders.tokenizer import ModelTokenizer
from lede.indexer.filters import Filters
from lede.indexer.index import LedeIndex
from lede.indexer.ingest import chunk_articles, duplicate_ids, embed_articles
from lede.indexer.models import Article
from lede.service.engine import SearchEngine


@pytest.mark.model
def test_the_tokenizer_alone_counts_as_the_models_own(
    real_embedder: SentenceTransformerEmbedder, sample_articles: list[Article]
) -> None:
    own = real_embedder.model.tokenizer  # type: ignore[attr-defined]
    alone = ModelTokenizer(resolve_model_path("all-MiniLM-L6-v2"))
    texts = [a.text for a in sample_articles] + [a.title for a in sample_articles]
    texts += ["naïve café — “quotes” 😀 e-mail\u00a0x", "", "  spaced   out  "]
    expected = [len(ids) for ids in own(texts, add_special_tokens=False)["input_ids"]]
    assert alone.count_tokens(texts) == expected
    for text in texts[:5]:
        offsets = own(text, add_special_tokens=False, return_offsets_mapping=True)
        assert alone.token_spans(text) == [tuple(o) for o in offsets["offset_mapping"]]
    assert alone.max_tokens == int(real_embedder.model.max_seq_length) - 2  # type: ignore[attr-defined]


def test_chunking_loads_neither_the_model_nor_pytorch(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from lede.indexer.chunker import Chunker\n"
        "from lede.indexer.encoders.embedder import SentenceTransformerEmbedder\n"
        "from lede.indexer.ingest import chunk_articles\n"
        "from lede.indexer.models import Article\n"
        "embedder = SentenceTransformerEmbedder()\n"
        "article = Article(id='a', title='T', text='One sentence here. ' * 200)\n"
        "prepared = chunk_articles([article], Chunker(embedder))\n"
        "print(len(prepared[0].chunks), 'torch' in sys.modules, embedder._model is None)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    chunks, torch_loaded, model_unloaded = completed.stdout.split()
    assert int(chunks) > 1 and torch_loaded == "False" and model_unloaded == "True"


def test_the_stages_run_apart_give_the_index_that_add_gives(
    tmp_path: Path, sample_articles: list[Article]
) -> None:
    embedder = HashingEmbedder(dimension=64, max_tokens=64)
    with LedeIndex.create(tmp_path / "added", embedder=embedder) as added:
        added.add(sample_articles)
        with LedeIndex.create(tmp_path / "staged", embedder=embedder) as staged:
            prepared = chunk_articles(sample_articles, Chunker(embedder))  # e.g. on a worker
            batch = embed_articles(prepared, embedder)  # e.g. on a GPU
            assert batch.embedded == len({h for p in prepared for h in p.input_hashes})
            read_back = staged.store.embeddings

            def refuse(rowids: object) -> np.ndarray:
                raise AssertionError("the write stage read vectors back from SQLite")

            staged.store.embeddings = refuse  # type: ignore[method-assign]
            with staged.writing():
                staged.write_prepared(batch)
            staged.store.embeddings = read_back  # type: ignore[method-assign]
            for query in ("Rome car chase", "interest rates", "ferry"):
                for mode in ("bm25", "dense", "hybrid"):
                    got = SearchEngine(staged).search(query, mode=mode, k=8)  # type: ignore[arg-type]
                    want = SearchEngine(added).search(query, mode=mode, k=8)  # type: ignore[arg-type]
                    assert [(h.record.chunk_id, h.score) for h in got.hits] == [
                        (h.record.chunk_id, h.score) for h in want.hits
                    ]
            assert staged.stats() == added.stats()


def test_an_updated_article_reuses_the_embeddings_of_its_unchanged_chunks(
    tmp_path: Path, sample_articles: list[Article]
) -> None:
    with LedeIndex.create(tmp_path / "i", embedder=HashingEmbedder(64, 64)) as index:
        index.add(sample_articles[:3])
        article = sample_articles[0]
        longer = article.model_copy(update={"text": article.text + " A new closing sentence."})
        report = index.add([longer])
        assert (report.updated, report.added) == (1, 0)
        assert 0 < report.embedded < report.chunks  # only the chunks whose input changed


def test_a_write_embeds_its_texts_longest_first_each_vector_kept_with_its_text(
    sample_articles: list[Article], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    class Recording(HashingEmbedder):
        def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
            calls.append(list(texts))
            return super().embed(texts, progress=progress)

    embedder = Recording(dimension=32, max_tokens=64)
    prepared = chunk_articles(sample_articles, Chunker(embedder))
    monkeypatch.setattr("lede.indexer.ingest.EMBED_SLICE", 16)  # slices, as a large write has
    batch = embed_articles(prepared, embedder)
    sent = [text for call in calls for text in call]
    assert len(calls) > 2 and all(len(call) <= 16 for call in calls)
    counts = embedder.count_tokens(sent)
    assert counts == sorted(counts, reverse=True)  # longest first, across the whole write
    assert sorted(sent) == sorted({text for item in prepared for text in item.inputs})
    for item in prepared:
        for text, digest in zip(item.inputs, item.input_hashes, strict=True):
            np.testing.assert_array_equal(batch.vectors[digest], embedder.embed([text])[0])


def test_filters_from_values_name_the_bad_date() -> None:
    with pytest.raises(ValueError, match="--since '2021-13-01' is not an ISO 8601 date"):
        Filters.from_values(since="2021-13-01", names=("--since", "--until"))
    parsed = Filters.from_values(tags=["film"], until="2021-03-01")
    assert parsed.tags == ("film",) and parsed.until is not None and parsed.until.tzinfo


def test_duplicate_ids_are_found_once_each() -> None:
    articles = [Article(id=i, text="x") for i in ("a", "b", "a", "c", "b", "a")]
    assert duplicate_ids(articles) == ["a", "b"]
