"""Paging, totals, sorting by date and facet counts: the engine and the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from lede.indexer.index import LedeIndex
from lede.indexer.models import Article, parse_article
from lede.service.engine import SearchEngine
from lede.service.settings import Settings
from tests.server import running_server


def _articles() -> list[Article]:
    items = []
    for i in range(30):
        items.append(
            parse_article(
                {
                    "id": f"a{i:02d}",
                    "title": f"Harbor report {i}",
                    "text": f"The harbor ferry schedule changed again, report number {i}. "
                    + ("Storm warnings were issued." if i % 3 == 0 else "Calm seas."),
                    "source": "Harbor Daily" if i % 2 else "Coast Times",
                    "tags": ["ferry", "storm"] if i % 3 == 0 else ["ferry"],
                    # a01 is undated; the rest one day apart.
                    "published_at": None if i == 1 else f"2021-01-{i + 1:02d}T00:00:00Z",
                }
            )
        )
    items.append(parse_article({"id": "other", "text": "Nothing about boats here."}))
    return items


@pytest.fixture
def engine(fake_index: LedeIndex) -> SearchEngine:
    fake_index.add(_articles())
    return SearchEngine(fake_index)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_pages_are_stable_and_add_up(engine: SearchEngine, mode: str) -> None:
    expected_total = 30 if mode == "bm25" else 31  # dense ranks every chunk
    whole = engine.search("harbor ferry storm", mode=mode, k=31)  # type: ignore[arg-type]
    pages = [
        engine.search("harbor ferry storm", mode=mode, k=7, offset=o)  # type: ignore[arg-type]
        for o in range(0, 31, 7)
    ]
    paged = [h.record.chunk_id for page in pages for h in page.hits]
    assert paged == [h.record.chunk_id for h in whole.hits]
    assert len(set(paged)) == len(paged) == expected_total
    assert {p.total for p in pages} == {expected_total}


def test_totals_follow_the_filters_and_grouping(engine: SearchEngine) -> None:
    from lede.indexer.filters import Filters

    storm = engine.search("storm", mode="bm25", k=3)
    assert storm.total == 10
    harbor_daily = engine.search("ferry", mode="bm25", filters=Filters(sources=("Harbor Daily",)))
    assert harbor_daily.total == 15
    assert engine.search("ferry", mode="dense", group="article").total == 31


def test_sort_by_date_is_newest_first_with_undated_last(engine: SearchEngine) -> None:
    result = engine.search("harbor ferry", mode="bm25", k=30, sort="published_at")
    dates = [h.record.published_at for h in result.hits]
    assert dates[-1] is None and result.hits[-1].record.article_id == "a01"
    dated = [datetime.fromisoformat(d.replace("Z", "+00:00")) for d in dates[:-1] if d]
    assert dated == sorted(dated, reverse=True) and dated[0] == datetime(2021, 1, 30, tzinfo=UTC)
    second = engine.search("harbor ferry", mode="bm25", k=5, offset=5, sort="published_at")
    assert [h.record.chunk_id for h in second.hits] == [
        h.record.chunk_id for h in result.hits[5:10]
    ]


def test_facets_count_matching_articles(engine: SearchEngine) -> None:
    result = engine.search("storm", mode="bm25", k=1, facets=True)
    assert result.facets == {
        "source": [{"value": "Coast Times", "count": 5}, {"value": "Harbor Daily", "count": 5}],
        "tag": [{"value": "ferry", "count": 10}, {"value": "storm", "count": 10}],
    }
    assert engine.search("storm", mode="bm25").facets is None


def test_bad_paging_is_refused(engine: SearchEngine) -> None:
    with pytest.raises(ValueError, match="offset"):
        engine.search("ferry", offset=-1)
    with pytest.raises(ValueError, match="within"):
        engine.search("ferry", k=10, offset=995)
    with pytest.raises(ValueError, match="sort must be one of"):
        engine.search("ferry", sort="title")  # type: ignore[arg-type]


@pytest.mark.model
@pytest.mark.server
def test_paging_sorting_and_facets_over_http(sample_index_dir) -> None:  # type: ignore[no-untyped-def]
    with running_server(Settings(index=sample_index_dir)) as url:
        first = httpx.get(f"{url}/search", params={"query": "Rome", "k": 3}).json()
        second = httpx.get(f"{url}/search", params={"query": "Rome", "k": 3, "offset": 3}).json()
        both = httpx.get(f"{url}/search", params={"query": "Rome", "k": 6}).json()
        assert [h["chunk_id"] for h in first["hits"] + second["hits"]] == [
            h["chunk_id"] for h in both["hits"]
        ]
        assert first["total"] == both["total"] == 44 and "facets" not in first
        newest = httpx.post(
            f"{url}/search",
            json={"query": "Rome", "mode": "bm25", "sort": "published_at", "facets": True},
        ).json()
        dates = [h["published_at"] for h in newest["hits"] if h["published_at"]]
        assert dates == sorted(dates, reverse=True)
        assert newest["facets"]["source"] and newest["facets"]["tag"]
        assert sum(f["count"] for f in newest["facets"]["source"]) <= newest["total"]
        deep = httpx.get(f"{url}/search", params={"query": "Rome", "k": 10, "offset": 901})
        assert deep.status_code == 422
        assert deep.json()["error"]["details"][0]["field"] == "offset"
        assert "the limit is 900" in deep.json()["error"]["message"]
        schema = httpx.get(f"{url}/openapi.json").json()
        offset = schema["components"]["schemas"]["SearchBody"]["properties"]["offset"]
        assert offset["maximum"] == 900  # 1,000 deep at most, for any k up to LEDE_MAX_K
