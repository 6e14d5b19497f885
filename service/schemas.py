"""Request and response models of the HTTP API (they are also the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

from lede.indexer.filters import Filters
from lede.indexer.models import HAS_TEXT_PATTERN, ID_PATTERN, MAX_ID_LENGTH, MAX_TEXT_CHARS
from lede.service.engine import ModeName
from lede.service.fusion import Normalization


def _iso_datetime(value: object) -> object:
    """ISO 8601 strings only (a number is not a date, even where pydantic would allow it)."""
    if isinstance(value, datetime) or value is None:
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_datetime)]


def _json_integer(value: object) -> object:
    """JSON Schema counts 47.0 as an integer; booleans and strings are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


def _one_or_many(value: object) -> object:
    """`"tag": "x"` means `["x"]`, as `?tag=x` does."""
    return [value] if isinstance(value, str) else value


def _has_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain text, not only whitespace")
    return value


def _fits_one_article(value: str) -> str:
    _has_text(value)
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(
            f"is {len(value):,} characters; the limit is {MAX_TEXT_CHARS:,} (split the article "
            "into parts, e.g. one per chapter, with ids like 'report#1', 'report#2')"
        )
    return value


def _one_or_list(most: int) -> dict[str, Any]:
    """The schema of a list filter field that also takes one string (`"tag": "x"`)."""
    return {
        "anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}, "maxItems": most},
        ]
    }


Values = Annotated[
    list[str], BeforeValidator(_one_or_many), Field(max_length=50), WithJsonSchema(_one_or_list(50))
]
ArticleIds = Annotated[
    list[str],
    BeforeValidator(_one_or_many),
    Field(max_length=500),
    WithJsonSchema(_one_or_list(500)),
]
# Validated by the functions above (so errors say what to do); the schema still publishes the
# pattern and the length, so generated clients and fuzzers know the rules.
QueryText = Annotated[
    str,
    AfterValidator(_has_text),
    Field(min_length=1, json_schema_extra={"pattern": HAS_TEXT_PATTERN}),
]
ArticleText = Annotated[
    str,
    AfterValidator(_fits_one_article),
    Field(
        min_length=1,
        json_schema_extra={"pattern": HAS_TEXT_PATTERN, "maxLength": MAX_TEXT_CHARS},
    ),
]

# JSON bodies are validated strictly (no "10" for 10, no false for 0.0), so that a request the
# schema calls invalid is always refused; query strings are text and keep pydantic's coercion.
STRICT_BODY = ConfigDict(extra="forbid", strict=True)


class FilterFields(BaseModel):
    """Filters shared by search and answers; list fields match any of their values."""

    model_config = ConfigDict(extra="forbid")

    source: Values = Field(default_factory=list)
    author: Values = Field(default_factory=list)
    tag: Values = Field(default_factory=list)
    article_id: ArticleIds = Field(default_factory=list)
    since: IsoDatetime | None = Field(None, description="Published on or after (ISO 8601).")
    until: IsoDatetime | None = Field(None, description="Published on or before (ISO 8601).")

    def to_filters(self) -> Filters:
        return Filters.from_values(
            sources=self.source,
            authors=self.author,
            tags=self.tag,
            article_ids=self.article_id,
            since=self.since,
            until=self.until,
        )


class SearchRequest(FilterFields):
    query: QueryText
    mode: ModeName = "hybrid"
    k: JsonInt = Field(10, ge=1, description="Hits to return (at most LEDE_MAX_K).")
    offset: JsonInt = Field(
        0, ge=0, description="Hits to skip, for the next page (offset + k at most 1000)."
    )
    sort: Literal["relevance", "published_at"] = Field(
        "relevance",
        description="published_at: newest first (undated last) among the 1000 most relevant "
        "matches.",
    )
    facets: bool = Field(False, description="Also count matching articles per source and tag.")
    group: Literal["chunk", "article"] = "chunk"
    fusion: Literal["rrf", "convex"] | None = Field(None, description="Override the fusion method.")
    alpha: float | None = Field(None, ge=0, le=1, description="Dense share for convex fusion.")
    normalization: Normalization | None = Field(
        None, description="How convex fusion scales each retriever's scores."
    )
    rrf_k: float | None = Field(None, gt=0, le=10_000, description="RRF constant.")
    highlight: bool = True
    allow_partial: bool = Field(
        False,
        description="On a sharded index served on Ray: answer without shards that are down, "
        "naming them in `partial`, instead of a 503.",
    )

    def overrides(self) -> dict[str, Any]:
        values = {
            "fusion": self.fusion,
            "alpha": self.alpha,
            "normalization": self.normalization,
            "rrf_k": self.rrf_k,
        }
        return {key: value for key, value in values.items() if value is not None}


class SearchBody(SearchRequest):
    """POST /search: the fields of GET /search as a JSON body."""

    model_config = STRICT_BODY


class AnswerRequest(FilterFields):
    question: QueryText
    mode: ModeName = "hybrid"
    threshold: float | None = Field(None, ge=0, le=1, description="Abstain below this confidence.")

    model_config = STRICT_BODY


class RetrieverScoreOut(BaseModel):
    rank: int
    score: float


class SpanOut(BaseModel):
    start: int
    end: int


class HitOut(BaseModel):
    article_id: str
    chunk_id: str
    title: str
    url: str | None
    published_at: str | None
    source: str | None
    author: str | None
    tags: list[str]
    text: str
    start: int = Field(description="Offset of `text` in the article text.")
    end: int
    score: float
    scores: dict[str, RetrieverScoreOut | None] = Field(
        description="Rank and score in each retriever (`bm25`, `dense`, and `rerank` when "
        "configured); null where that retriever did not return the passage."
    )
    highlights: list[SpanOut] = Field(description="Best-matching sentences, article offsets.")


class FacetValueOut(BaseModel):
    value: str
    count: int = Field(description="Matching articles with this value.")


class FacetCountsOut(BaseModel):
    source: list[FacetValueOut]
    tag: list[FacetValueOut]


class PartialOut(BaseModel):
    missing_shards: list[str] = Field(description="Shards whose hits are not in this result.")


class SearchResponse(BaseModel):
    hits: list[HitOut]
    total: int = Field(
        description="Every match, not just this page: chunks (articles with group=article) "
        "holding a query term for bm25; every chunk the filters allow for dense and hybrid."
    )
    facets: FacetCountsOut | None = Field(
        None, description="With facets=true: matching articles per source and per tag."
    )
    took_ms: float
    partial: PartialOut | None = Field(
        None, description="With allow_partial=true, when shards were down: which ones."
    )


class CitationOut(BaseModel):
    n: int
    article_id: str
    title: str
    url: str | None
    published_at: str | None
    chunk_id: str
    start: int
    end: int
    quote: str = Field(description="Exactly `article.text[start:end]`.")


class AnswerSpanOut(BaseModel):
    text: str = Field(description="The short answer: a name, date, place or number.")
    start: int = Field(description="Offset in the article text: `article.text[start:end]`.")
    end: int


class AnswerResponse(BaseModel):
    answer: str | None = Field(
        description="The answer sentence (or two adjacent ones), or null when Lede is not "
        "confident."
    )
    answer_span: AnswerSpanOut | None = Field(
        description="For who / when / where / how many / how much / how old questions, the "
        "short answer inside the answer sentence; null when none is clear."
    )
    confidence: float = Field(
        description="Calibrated probability that the answer is right (fitted on dev splits)."
    )
    citations: list[CitationOut]
    passages: list[HitOut]
    markdown: str
    took_ms: float


class ArticleBody(BaseModel):
    """An article's content (PUT /articles/{id}: the path names it)."""

    model_config = STRICT_BODY

    title: str = Field("", max_length=10_000)
    text: ArticleText
    url: str | None = Field(None, max_length=4096)
    published_at: IsoDatetime | None = None
    source: str | None = Field(None, max_length=1000)
    author: str | None = Field(None, max_length=1000)
    tags: list[str] = Field(default_factory=list, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    format: Literal["auto", "text", "html"] = Field(
        "auto",
        description="How to read `text`: `html` extracts the article (text, title, date, "
        "author) from the markup as HTML files are; `auto` does so when the text is HTML; "
        "`text` stores it as it is. Fields given here win over the extracted ones.",
    )


class ArticleIn(ArticleBody):
    """An article to store (POST /articles)."""

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)


class ArticleBatch(BaseModel):
    model_config = STRICT_BODY

    articles: list[ArticleIn] = Field(min_length=1)


def _article_shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "articles" in value else "article"


# One article, or `{"articles": [...]}`: the body's keys decide which, so a bad body gets the
# errors of the shape it meant, not of both.
ArticleWrite = Annotated[
    Annotated[ArticleIn, Tag("article")] | Annotated[ArticleBatch, Tag("batch")],
    Discriminator(_article_shape),
]


class WriteOut(BaseModel):
    added: int
    updated: int
    unchanged: int
    deleted: int
    chunks: int
    ids: list[str]


class ChunkOut(BaseModel):
    chunk_id: str
    ordinal: int
    start: int
    end: int


class ArticleOut(BaseModel):
    id: str
    title: str
    text: str
    url: str | None
    published_at: str | None
    source: str | None
    author: str | None
    tags: list[str]
    metadata: dict[str, Any]
    chunks: list[ChunkOut]


class DeleteOut(BaseModel):
    deleted: str


class FacetsOut(BaseModel):
    sources: list[str]
    tags: list[str]


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    ready: bool
    articles: int
    chunks: int
    model: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorBody
