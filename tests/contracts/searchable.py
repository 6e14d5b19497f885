"""The searchable-index contract's tests (indexer/searchable.py).

Subclass `SearchableContract` and provide two methods: `build(folder, articles)`, the
implementation under test holding these articles, and `write(index, articles, deletes)`,
which adds and deletes through it (the reference is written the same way). Every result is
compared with a plain `LedeIndex` of the same articles, to the last bit: an index spread over
shards or machines must answer exactly as one index does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.filters import Filters
from lede.indexer.index import LedeIndex
from lede.indexer.models import Article
from lede.indexer.searchable import Count, RetrievalRequest, SearchableIndex
from lede.service.engine import MODES, SearchEngine

QUERIES = [
    "Tom Cruise car chase in Rome",
    "why did filming stop in Venice",
    "electric buses and city transport",
    "vector search with embeddings",
    "the central bank raises interest rates",
    "zzz-no-such-word",
]
FILTERS = [
    None,
    Filters(sources=("Tech Current", "Northern Tribune")),
    Filters(tags=("film",)),
    Filters(article_ids=("mi7-release-delay", "rome-film-tourism")),
]


def embedder() -> HashingEmbedder:
    return HashingEmbedder(dimension=64, max_tokens=64)


def _hits(engine: SearchEngine, query: str, **options: Any) -> list[tuple[str, float]]:
    result = engine.search(query, **options)
    return [(hit.record.chunk_id, hit.score) for hit in result.hits] + [
        ("total", float(result.total))
    ]


class SearchableContract:
    """What every searchable index must do; see the module docstring."""

    def build(self, folder: Path, articles: Sequence[Article]) -> SearchableIndex:
        raise NotImplementedError

    def write(
        self, index: SearchableIndex, articles: Sequence[Article], deletes: Sequence[str]
    ) -> None:
        raise NotImplementedError

    @pytest.fixture
    def pair(
        self, tmp_path: Path, sample_articles: list[Article]
    ) -> Iterator[tuple[SearchableIndex, LedeIndex]]:
        tested = self.build(tmp_path / "tested", sample_articles)
        reference = LedeIndex.create(tmp_path / "reference", embedder=embedder())
        reference.add(sample_articles)
        yield tested, reference
        for index in (tested, reference):
            close = getattr(index, "close", None)
            if close is not None:
                close()

    def test_it_keeps_the_built_in_views(self, pair: tuple[SearchableIndex, LedeIndex]) -> None:
        tested, reference = pair
        assert tested.view_names == reference.view_names
        assert {"bm25", "dense"} <= set(tested.view_names)

    def test_each_view_lists_best_first_within_the_depth(
        self, pair: tuple[SearchableIndex, LedeIndex]
    ) -> None:
        tested, _ = pair
        for name, query in itertools.product(tested.view_names, QUERIES[:3]):
            found = tested.retrieve(RetrievalRequest(query, (name,), 7)).lists
            assert list(found) == [name]
            pairs = list(zip(found[name].scores, found[name].ids, strict=True))
            assert 0 < len(pairs) <= 7
            assert pairs == sorted(pairs, key=lambda pair: (-pair[0], pair[1]))

    def test_filters_apply_inside_every_view(self, pair: tuple[SearchableIndex, LedeIndex]) -> None:
        tested, _ = pair
        wanted = Filters(sources=("Tech Current",))
        found = tested.retrieve(
            RetrievalRequest("search with embeddings", tested.view_names, 50, filters=wanted)
        )
        for ranked in found.lists.values():
            records = tested.records(list(ranked.ids))
            assert len(records) == len(ranked.ids) > 0
            assert {record.source for record in records.values()} == {"Tech Current"}

    def test_counts_facets_and_keys_equal_the_reference(
        self, pair: tuple[SearchableIndex, LedeIndex]
    ) -> None:
        tested, reference = pair
        counts: tuple[Count, ...] = ("chunks", "articles")
        for query, filters, count in itertools.product(QUERIES, FILTERS, counts):
            for views in [(name,) for name in tested.view_names] + [tested.view_names]:
                request = RetrievalRequest(
                    query,
                    views,
                    20,
                    filters=filters,
                    count=count,
                    facets=5,
                    keys=True,
                )
                got, expected = tested.retrieve(request), reference.retrieve(request)
                assert got.total == expected.total and got.facets == expected.facets
                assert {name: (list(r.ids), list(r.scores)) for name, r in got.lists.items()} == {
                    name: (list(r.ids), list(r.scores)) for name, r in expected.lists.items()
                }
                assert set(got.keys) == set(expected.keys)
                by_article: dict[str, set[int]] = {}
                for chunk, record in tested.records(list(got.keys)).items():
                    by_article.setdefault(record.article_id, set()).add(got.keys[chunk].article)
                assert all(len(keys) == 1 for keys in by_article.values())

    def test_records_articles_and_the_query_encoding(
        self, pair: tuple[SearchableIndex, LedeIndex], sample_articles: list[Article]
    ) -> None:
        tested, reference = pair
        found = tested.retrieve(RetrievalRequest("Rome", ("bm25",), 5)).lists["bm25"]
        records = tested.records([*found.ids, 10**9])
        assert sorted(records) == sorted(found.ids)
        for record in records.values():
            article = tested.article(record.article_id)
            assert article is not None
            assert article[0].text[record.start : record.end] == record.text
        assert tested.article("no-such-article") is None
        vector = tested.encode_query("Rome")
        assert vector.shape == (1, embedder().dimension)
        assert np.array_equal(vector, reference.encode_query("Rome"))
        assert tested.analyze("Filming in Rome") == reference.analyze("Filming in Rome")
        assert tested.facet_values() == reference.facet_values()
        assert tested.stats()["articles"] == len(sample_articles)

    def test_search_equals_one_index_in_every_mode_fusion_and_filter(
        self, pair: tuple[SearchableIndex, LedeIndex]
    ) -> None:
        tested, reference = pair
        self._assert_same_searches(tested, reference)

    def test_writes_are_seen_by_the_next_search_as_in_one_index(
        self, pair: tuple[SearchableIndex, LedeIndex], sample_articles: list[Article]
    ) -> None:
        tested, reference = pair
        changed = sample_articles[3].model_copy(
            update={"text": sample_articles[3].text + " The crew later moved to Norway."}
        )
        new = Article(
            id="contract-new",
            title="A ferry to Lantern Island",
            text="The ferry to Lantern Island leaves at six every morning. Tickets cost £4.",
            source="Tech Current",
            tags=["transport"],
        )
        deletes = [sample_articles[0].id]
        for index in (tested, reference):
            self.write(index, [changed, new], deletes)
        assert tested.article(sample_articles[0].id) is None
        hits = SearchEngine(tested).search("ferry to Lantern Island", k=3).hits
        assert hits and hits[0].record.article_id == "contract-new"
        self._assert_same_searches(tested, reference)

    def _assert_same_searches(self, tested: SearchableIndex, reference: LedeIndex) -> None:
        engines = SearchEngine(tested), SearchEngine(reference)
        options: list[dict[str, Any]] = [{"mode": mode, "k": 8} for mode in MODES] + [
            {"mode": "hybrid", "k": 8, "overrides": {"fusion": "rrf"}},
            {"mode": "hybrid", "k": 8, "overrides": {"normalization": "minmax", "alpha": 0.5}},
            {"mode": "hybrid", "k": 5, "group": "article"},
            {"mode": "bm25", "k": 5, "offset": 5},
            {"mode": "hybrid", "k": 6, "sort": "published_at"},
        ]
        for query, filters, option in itertools.product(QUERIES, FILTERS, options):
            got = _hits(engines[0], query, filters=filters, **option)
            expected = _hits(engines[1], query, filters=filters, **option)
            assert got == expected, (query, filters, option)
