"""The data model: articles as callers send them, chunks as the index stores them."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lede.indexer.errors import InvalidArticleError

MAX_ID_LENGTH = 512
MAX_TEXT_CHARS = 1_000_000  # about 1,500 passages; larger is refused per article (decisions.md)

# Python's whitespace (str.isspace), spelled out so that every regex engine agrees on it: the
# HTTP schema publishes these patterns and pydantic (Rust regex) enforces them there.
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
HAS_TEXT_PATTERN = f"[^{WHITESPACE}]"
ID_PATTERN = rf"^[^{WHITESPACE}\x00](?:[^\x00\t\r\n]*[^{WHITESPACE}\x00])?$"


class Article(BaseModel):
    """One article. `id` is caller-supplied and stable; `text` is what offsets point into."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    title: str = ""
    text: str = Field(min_length=1)
    url: str | None = None
    published_at: datetime | None = None
    source: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_is_printable(cls, value: str) -> str:
        if not re.fullmatch(ID_PATTERN, value):
            raise ValueError("must not contain control characters or surrounding whitespace")
        return value

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not re.search(HAS_TEXT_PATTERN, value):
            raise ValueError("must contain non-whitespace text")
        if len(value) > MAX_TEXT_CHARS:
            raise ValueError(
                f"is {len(value):,} characters; the limit is {MAX_TEXT_CHARS:,} "
                "(split the article into parts)"
            )
        return value

    @field_validator("published_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        if isinstance(value, str):
            separator = ";" if ";" in value else ","
            return tuple(tag.strip() for tag in value.split(separator) if tag.strip())
        return value

    @property
    def published_iso(self) -> str | None:
        """`published_at` as an ISO 8601 UTC string, or None."""
        if self.published_at is None:
            return None
        return self.published_at.isoformat().replace("+00:00", "Z")

    @property
    def published_ts(self) -> float | None:
        """`published_at` as a POSIX timestamp, or None."""
        return None if self.published_at is None else self.published_at.timestamp()

    def content_hash(self) -> str:
        """A hash of everything stored for the article; equal hashes mean nothing changed."""
        payload = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def parse_article(data: Any) -> Article:
    """Validate one raw mapping (JSON object, CSV row, API body) into an Article.

    BEIR corpus files work as they are: `_id` is accepted for `id`, and keys this model does
    not know are kept in `metadata`.

    Raises:
        InvalidArticleError: naming the offending field and what is allowed.
    """
    if not isinstance(data, dict):
        raise InvalidArticleError(f"expected a JSON object, got {type(data).__name__}")
    fields = dict(data)
    if "id" not in fields and "_id" in fields:
        fields["id"] = fields.pop("_id")
    if isinstance(fields.get("id"), int):
        fields["id"] = str(fields["id"])
    known = set(Article.model_fields)
    extra = {key: fields.pop(key) for key in list(fields) if key not in known}
    if extra:
        metadata = fields.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidArticleError("field 'metadata': must be an object")
        fields["metadata"] = {**extra, **metadata}
    for key in ("url", "source", "author", "published_at"):
        if fields.get(key) == "":
            fields[key] = None
    text, title = fields.get("text"), fields.get("title")
    blank = text is None or (isinstance(text, str) and not text.strip())
    if blank and isinstance(title, str) and title.strip():
        fields["text"] = title  # title-only records (common in BEIR corpora) stay searchable
    try:
        return Article.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in item['loc']) or 'article'}': {item['msg']}"
            for item in error.errors()
        )
        raise InvalidArticleError(problems) from None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of an article: `article.text[start:end] == text` exactly. `sentences` are the
    article's sentences (or pieces of an over-long one) that make up the passage, as spans
    into `text`: the chunker found them, so highlighting need not split the text again."""

    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]

    @property
    def chunk_id(self) -> str:
        return f"{self.article_id}#{self.ordinal}"


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A stored chunk with the article fields that filters and hits need."""

    rowid: int
    chunk_id: str
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str
    url: str | None
    published_at: str | None
    published_ts: float | None
    source: str | None
    author: str | None
    tags: tuple[str, ...]
    # The chunker's sentence spans into `text` as stored (JSON, read only when highlighting);
    # None for a chunk an older Lede stored without them.
    stored_sentences: str | None = None

    def sentences(self) -> list[tuple[int, int]] | None:
        """The chunk's sentence spans into `text`, as the chunker found them (None: not stored)."""
        if self.stored_sentences is None:
            return None
        return [(start, end) for start, end in json.loads(self.stored_sentences)]
