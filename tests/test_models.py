"""Article parsing and validation: ids, dates, tags, metadata and the content hash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lede.indexer.errors import InvalidArticleError
from lede.indexer.models import parse_article


def test_beir_record_is_accepted_as_is() -> None:
    article = parse_article({"_id": "4983", "title": "T", "text": "Body.", "metadata": {"a": 1}})
    assert article.id == "4983"
    assert article.metadata == {"a": 1}


def test_unknown_keys_go_to_metadata_and_integer_ids_become_strings() -> None:
    article = parse_article({"id": 7, "text": "Body.", "section": "world"})
    assert article.id == "7"
    assert article.metadata == {"section": "world"}


def test_dates_are_normalized_to_utc_and_tags_split() -> None:
    article = parse_article(
        {"id": "a", "text": "x", "published_at": "2020-10-14T11:30:00+02:00", "tags": "a; b"}
    )
    assert article.published_at == datetime(2020, 10, 14, 9, 30, tzinfo=UTC)
    assert article.published_iso == "2020-10-14T09:30:00Z"
    assert article.tags == ("a", "b")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"text": "no id"}, "id"),
        ({"id": "a"}, "text"),
        ({"id": "a", "text": "   "}, "text"),
        ({"id": "a", "text": "x", "published_at": "yesterday"}, "published_at"),
        ({"id": " padded ", "text": "x"}, "id"),
        ({"id": "a", "text": "x", "tags": 5}, "tags"),
    ],
)
def test_invalid_articles_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArticleError, match=f"field '{field}"):
        parse_article(data)


def test_non_object_is_rejected() -> None:
    with pytest.raises(InvalidArticleError, match="expected a JSON object"):
        parse_article(["not", "an", "object"])


def test_content_hash_changes_with_content_only() -> None:
    first = parse_article({"id": "a", "text": "x", "tags": ["t"]})
    assert (
        first.content_hash() == parse_article({"id": "a", "text": "x", "tags": "t"}).content_hash()
    )
    assert first.content_hash() != parse_article({"id": "a", "text": "y"}).content_hash()


def test_title_only_records_use_the_title_as_text() -> None:
    article = parse_article({"_id": "1", "title": "Only a title", "text": ""})
    assert article.text == "Only a title"
