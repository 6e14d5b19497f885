"""What every HTTP route shares: the service-state dependencies (readiness, keys), the error
documentation, the configured limits, and turning request bodies into articles.

Only the HTTP layer imports this (and FastAPI); the engine and the index know nothing of it.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response

from lede.indexer.documents import html_fields, looks_like_html
from lede.indexer.ingest import duplicate_ids
from lede.indexer.models import Article, parse_article
from lede.service.http.auth import check_key
from lede.service.http.errors import APIError, invalid_field
from lede.service.schemas import ArticleBody, ErrorOut
from lede.service.settings import Settings
from lede.service.state import ServiceState

# What each status means on Lede's routes; every route lists exactly the ones it can return.
ERROR_MEANINGS = {
    400: "The body is not valid JSON.",
    401: "The API key is missing or wrong (`Authorization: Bearer <key>`).",
    403: "Writes are disabled: the server has no LEDE_API_KEYS.",
    404: "No article with this id.",
    409: "The same id appears twice in one batch (`duplicate_id`).",
    413: "The body is larger than LEDE_MAX_BODY_BYTES.",
    422: "A field or parameter is invalid; the message names it and its limit.",
    503: "The index is opening, the models are warming up (see Retry-After), or another "
    "writer holds the index.",
    507: "The disk is full; nothing of this request was stored.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer these statuses."""
    return {s: {"model": ErrorOut, "description": ERROR_MEANINGS[s]} for s in statuses}


def read_errors(settings: Settings, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """A read route's statuses: 401 too when reads need a key."""
    auth = (401,) if settings.read_requires_key else ()
    return errors(*sorted({*statuses, *auth, 503}))


WRITE_ERRORS = (400, 401, 403, 413, 422, 503, 507)


# The dependencies are `async def` because they only read attributes and compare a key: a
# plain `def` dependency costs a hop to the thread pool per request (decision 24).
async def ready_state(request: Request) -> ServiceState:
    return check_ready(getattr(request.app.state, "lede", None))


def check_ready(state: ServiceState | None) -> ServiceState:
    """The state, once the index is open and the models warm (else 503 with Retry-After)."""
    if state is None:
        raise APIError(503, "the index is not open yet", code="starting")
    reason = state.not_ready()
    if reason is not None:
        raise APIError(503, reason, code="warming_up", headers={"Retry-After": "2"})
    return state


async def _reader(
    request: Request, state: Annotated[ServiceState, Depends(ready_state)]
) -> ServiceState:
    check_key(request, state.settings, write=False)
    return state


async def _writer(
    request: Request, state: Annotated[ServiceState, Depends(ready_state)]
) -> ServiceState:
    check_key(request, state.settings, write=True)
    return state


ReadState = Annotated[ServiceState, Depends(_reader)]
WriteState = Annotated[ServiceState, Depends(_writer)]


def check_limits(state: ServiceState, field: str, text: str, k: int | None = None) -> None:
    """The configured limits, reported like any other invalid field."""
    settings = state.settings
    if len(text) > settings.max_query_chars:
        raise invalid_field(
            field,
            f"is {len(text)} characters; the limit is {settings.max_query_chars} "
            "(LEDE_MAX_QUERY_CHARS)",
            limit=settings.max_query_chars,
        )
    if k is not None and k > settings.max_k:
        raise invalid_field(
            "k", f"is {k}; the limit is {settings.max_k} (LEDE_MAX_K)", limit=settings.max_k
        )


def deepest_offset(settings: Settings, window: int) -> int:
    """The largest offset the API takes: any k up to LEDE_MAX_K then stays in the window."""
    return max(0, window - settings.max_k)


def json_response(data: dict[str, Any]) -> Response:
    """orjson, without FastAPI's re-validation (the engine builds the documented shape)."""
    return Response(orjson.dumps(data), media_type="application/json")


def to_article(item: ArticleBody, article_id: str | None = None) -> Article:
    """A request body as an article (HTML bodies extracted like HTML files)."""
    data = item.model_dump(exclude_none=True, exclude={"format"})
    if article_id is not None:
        data["id"] = article_id
    # An explicit `html` body without any markup is text already: it is stored as it is.
    if looks_like_html(item.text) and item.format in ("html", "auto"):
        given = {k: v for k, v in data.items() if k != "text" and v not in ("", [], {})}
        data = {**html_fields(item.text), **given}
    return parse_article(data)


def check_batch_size(state: ServiceState, count: int) -> None:
    """A batch within LEDE_MAX_BATCH (else 422)."""
    if count > state.settings.max_batch:
        raise invalid_field(
            "articles",
            f"has {count} articles; the limit is {state.settings.max_batch} "
            "(LEDE_MAX_BATCH): send several batches",
            limit=state.settings.max_batch,
        )


def check_batch(state: ServiceState, articles: list[Article]) -> None:
    """A batch within LEDE_MAX_BATCH that names each article once (else 422 or 409)."""
    check_batch_size(state, len(articles))
    duplicates = duplicate_ids(articles)
    if duplicates:
        raise APIError(
            409,
            f"duplicate ids in one batch: {', '.join(duplicates)}; send each article once",
            code="duplicate_id",
            details=[{"field": "articles.id", "values": duplicates}],
        )
