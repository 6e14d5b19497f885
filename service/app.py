"""The FastAPI application: `create_app(settings)` builds it, `lede serve` runs it on uvicorn."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.routing import Route

from lede.indexer.documents import html_fields, looks_like_html
from lede.indexer.errors import ArticleNotFoundError, LedeError
from lede.indexer.ingest import WriteReport
from lede.indexer.models import Article, parse_article
from lede.service.auth import check_key
from lede.service.engine import EngineSettings
from lede.service.http_errors import APIError, install_error_handlers, invalid_field
from lede.service.integrations import McpEndpoint, handle_slack
from lede.service.middleware import BodyLimitMiddleware, MetricsMiddleware
from lede.service.schemas import (
    AnswerRequest,
    AnswerResponse,
    ArticleBatch,
    ArticleBody,
    ArticleOut,
    ArticleWrite,
    DeleteOut,
    ErrorOut,
    FacetsOut,
    HealthOut,
    ReadyOut,
    SearchBody,
    SearchRequest,
    SearchResponse,
    WriteOut,
)
from lede.service.settings import Settings
from lede.service.state import ServiceState

logger = logging.getLogger(__name__)

_STATIC = {
    name: (files("lede.service") / "static" / name).read_bytes()
    for name in ("index.html", "app.js", "style.css")
}
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
SECURITY_SCHEME = "apiKey"


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorOut, "description": ERROR_MEANINGS[s]} for s in statuses}


def _state(request: Request) -> ServiceState:
    state: ServiceState | None = getattr(request.app.state, "lede", None)
    if state is None:
        raise APIError(503, "the index is not open yet", code="starting")
    return state


# The dependencies are `async def` because they only read attributes and compare a key: a
# plain `def` dependency costs a hop to the thread pool per request (decision 24).
async def _ready_state(request: Request) -> ServiceState:
    state = _state(request)
    if not state.ready.is_set():
        message = state.warm_up_error or "models are still loading; retry shortly"
        raise APIError(503, message, code="warming_up", headers={"Retry-After": "2"})
    return state


async def _reader(
    request: Request, state: Annotated[ServiceState, Depends(_ready_state)]
) -> ServiceState:
    check_key(request, state.settings, write=False)
    return state


async def _writer(
    request: Request, state: Annotated[ServiceState, Depends(_ready_state)]
) -> ServiceState:
    check_key(request, state.settings, write=True)
    return state


ReadState = Annotated[ServiceState, Depends(_reader)]
WriteState = Annotated[ServiceState, Depends(_writer)]


def _check_limits(state: ServiceState, field: str, text: str, k: int | None = None) -> None:
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


def _deepest_offset(settings: Settings, window: int) -> int:
    """The largest offset the API takes: any k up to LEDE_MAX_K then stays in the window."""
    return max(0, window - settings.max_k)


def _search(state: ServiceState, request: SearchRequest) -> dict[str, Any]:
    _check_limits(state, "query", request.query, request.k)
    deepest = _deepest_offset(state.settings, state.engine.settings.sort_window)
    if request.offset > deepest:
        raise invalid_field(
            "offset",
            f"is {request.offset}; the limit is {deepest} (pages reach "
            f"{state.engine.settings.sort_window} hits deep): narrow the query or its filters",
            limit=deepest,
        )
    result = state.engine.search(
        request.query,
        mode=request.mode,
        k=request.k,
        filters=request.to_filters(),
        group=request.group,
        highlight=request.highlight,
        overrides=request.overrides(),
        offset=request.offset,
        sort=request.sort,
        facets=request.facets,
    )
    return result.to_json()


def _json(data: dict[str, Any]) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _to_article(item: ArticleBody, article_id: str | None = None) -> Article:
    data = item.model_dump(exclude_none=True, exclude={"format"})
    if article_id is not None:
        data["id"] = article_id
    # An explicit `html` body without any markup is text already: it is stored as it is.
    if looks_like_html(item.text) and item.format in ("html", "auto"):
        given = {k: v for k, v in data.items() if k != "text" and v not in ("", [], {})}
        data = {**html_fields(item.text), **given}
    return parse_article(data)


def _write(state: ServiceState, articles: list[Article]) -> dict[str, Any]:
    ids = [a.id for a in articles]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise APIError(
            409,
            f"duplicate ids in one batch: {', '.join(duplicates)}; send each article once",
            code="duplicate_id",
            details=[{"field": "articles.id", "values": duplicates}],
        )
    report: WriteReport = state.index.add(articles, lock_timeout=state.settings.write_timeout)
    state.wrote = True
    return {
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "deleted": 0,
        "chunks": report.chunks,
        "ids": ids,
    }


def create_app(settings: Settings) -> FastAPI:
    """Build the app for one index. The index opens (and models load) in the lifespan."""

    mcp_endpoint = McpEndpoint(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            state = ServiceState(settings)
        except LedeError as error:  # a damaged or foreign index: say so plainly, then exit
            logger.error("cannot serve %s: %s", settings.index, error)
            raise
        app.state.lede = state
        threading.Thread(target=state.warm_up, name="lede-warm-up", daemon=True).start()
        try:
            if settings.mcp_enabled:
                async with mcp_endpoint.serving(state):
                    yield
            else:
                yield
        finally:
            app.state.lede = None
            state.close()

    # Swagger UI and ReDoc from files in the package (fastapi-offline): /docs works offline.
    app = FastAPIOffline(
        title="Lede",
        summary="Hybrid semantic search and extractive answers with citations over articles.",
        version="0.1.0",
        lifespan=lifespan,
    )
    auth = (401,) if settings.read_requires_key else ()
    reads = _errors(*auth, 503)
    body_reads = _errors(400, *auth, 413, 422, 503)
    writes = (400, 401, 403, 413, 422, 503, 507)
    install_error_handlers(app)
    _document_limits(app, settings)
    registry = CollectorRegistry()
    _install_index_gauges(app, registry)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, registry=registry)

    if settings.mcp_enabled:
        app.router.routes.append(
            Route("/mcp", endpoint=mcp_endpoint, methods=["GET", "POST", "DELETE"])
        )

    @app.post(
        "/integrations/slack/command",
        tags=["integrations"],
        responses={
            401: {"model": ErrorOut, "description": "The Slack signature is missing or wrong."},
            403: {"model": ErrorOut, "description": "No LEDE_SLACK_SIGNING_SECRET is set."},
            **_errors(413, 503),
        },
    )
    async def slack_command(request: Request) -> Response:
        """A Slack slash command (form-encoded, signed by Slack); replies with Block Kit JSON."""
        return await handle_slack(request, settings)

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        """The search page (static HTML, no build step, no network)."""
        return Response(_STATIC["index.html"], media_type="text/html; charset=utf-8")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC or name == "index.html":
            raise APIError(404, f"no static file {name!r}")
        media = "text/css" if name.endswith(".css") else "text/javascript"
        return Response(_STATIC[name], media_type=f"{media}; charset=utf-8")

    @app.get("/facets", response_model=FacetsOut, tags=["search"], responses=reads)
    def facets(state: ReadState) -> dict[str, Any]:
        """Values to filter by: the sources and tags present in the index."""
        return state.index.facet_values()

    @app.get("/health", response_model=HealthOut, tags=["operations"])
    def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready", response_model=ReadyOut, tags=["operations"], responses=_errors(503))
    def ready(state: Annotated[ServiceState, Depends(_ready_state)]) -> dict[str, Any]:
        """The index is open and the models are warm (503 until then)."""
        return {"ready": True, **state.index.stats()}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics: requests and latency per route, index size."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # The hot routes serialize with orjson and skip FastAPI's response re-validation (the
    # engine builds exactly the documented shape; tests check it against the schema).
    @app.get(
        "/search",
        response_model=SearchResponse,
        tags=["search"],
        responses=_errors(*auth, 422, 503),
    )
    def search_get(state: ReadState, params: Annotated[SearchRequest, Query()]) -> Response:
        """Ranked passages. Repeat list parameters (`?tag=a&tag=b`) to allow several values."""
        return _json(_search(state, params))

    @app.post("/search", response_model=SearchResponse, tags=["search"], responses=body_reads)
    def search_post(state: ReadState, body: SearchBody) -> Response:
        """Ranked passages (same fields as GET /search, as a JSON body)."""
        return _json(_search(state, body))

    @app.post("/answer", response_model=AnswerResponse, tags=["search"], responses=body_reads)
    def answer(state: ReadState, body: AnswerRequest) -> Response:
        """An extractive answer with numbered citations, or `answer: null` and the best passages."""
        _check_limits(state, "question", body.question)
        result = state.answerer.ask(
            body.question, mode=body.mode, filters=body.to_filters(), threshold=body.threshold
        )
        return _json(result.to_json())

    @app.get(
        "/articles/{article_id:path}",
        response_model=ArticleOut,
        tags=["articles"],
        responses=_errors(*auth, 404, 503),
    )
    def get_article(state: ReadState, article_id: str) -> dict[str, Any]:
        """A stored article with the spans of its chunks."""
        found = state.index.article(article_id)
        if found is None:
            raise ArticleNotFoundError(f"no article with id {article_id!r}")
        article, chunks = found
        return {
            **article.model_dump(mode="json", exclude={"published_at"}),
            "published_at": article.published_iso,
            "chunks": [
                {"chunk_id": c.chunk_id, "ordinal": c.ordinal, "start": c.start, "end": c.end}
                for c in chunks
            ],
        }

    @app.post(
        "/articles", response_model=WriteOut, tags=["articles"], responses=_errors(*writes, 409)
    )
    def post_articles(state: WriteState, body: ArticleWrite) -> dict[str, Any]:
        """Add or update one article, or a batch as `{"articles": [...]}`."""
        items = body.articles if isinstance(body, ArticleBatch) else [body]
        if len(items) > state.settings.max_batch:
            raise invalid_field(
                "articles",
                f"has {len(items)} articles; the limit is {state.settings.max_batch} "
                "(LEDE_MAX_BATCH): send several batches",
                limit=state.settings.max_batch,
            )
        return _write(state, [_to_article(item) for item in items])

    @app.put(
        "/articles/{article_id:path}",
        response_model=WriteOut,
        tags=["articles"],
        responses=_errors(*writes),
    )
    def put_article(state: WriteState, article_id: str, body: ArticleBody) -> dict[str, Any]:
        """Create or replace the article with this id."""
        return _write(state, [_to_article(body, article_id)])

    @app.delete(
        "/articles/{article_id:path}",
        response_model=DeleteOut,
        tags=["articles"],
        responses=_errors(401, 403, 404, 503, 507),
    )
    def delete_article(state: WriteState, article_id: str) -> dict[str, str]:
        """Delete the article from the database and every view."""
        if state.index.delete([article_id], lock_timeout=state.settings.write_timeout) == 0:
            raise ArticleNotFoundError(f"no article with id {article_id!r}")
        state.wrote = True
        return {"deleted": article_id}

    return app


def _document_limits(app: FastAPI, settings: Settings) -> None:
    """Put the configured limits (LEDE_MAX_K, LEDE_MAX_QUERY_CHARS, LEDE_MAX_BATCH) into the
    OpenAPI schema, so that a request the schema allows is one the service accepts."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        limits = {
            "k": {"maximum": settings.max_k},
            "query": {"maxLength": settings.max_query_chars},
            "question": {"maxLength": settings.max_query_chars},
            "articles": {"maxItems": settings.max_batch},
            "offset": {"maximum": _deepest_offset(settings, EngineSettings().sort_window)},
        }
        for component in schema.get("components", {}).get("schemas", {}).values():
            for name, field in component.get("properties", {}).items():
                field.update(limits.get(name, {}))
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.get("422", {}).get("description") == "Validation Error":
                    del responses["422"]  # FastAPI's default; routes list the 422s they have
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "query":
                        parameter["schema"].update(limits.get(parameter["name"], {}))
                if "401" in operation.get("responses", {}) and not path.startswith("/integrations"):
                    operation["security"] = [{SECURITY_SCHEME: []}]
        for unused in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(unused, None)
        schema.setdefault("components", {})["securitySchemes"] = {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "One of the server's LEDE_API_KEYS. Writes need it; reads too "
                "when LEDE_READ_REQUIRES_KEY is set.",
            }
        }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_index_gauges(app: FastAPI, registry: CollectorRegistry) -> None:
    def count(name: str) -> float:
        state: ServiceState | None = getattr(app.state, "lede", None)
        return float(state.index.stats()[name]) if state else 0.0

    Gauge("lede_index_articles", "Articles in the index.", registry=registry).set_function(
        lambda: count("articles")
    )
    Gauge("lede_index_chunks", "Chunks in the index.", registry=registry).set_function(
        lambda: count("chunks")
    )


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (used by `lede serve`, one per worker process)."""
    return create_app(Settings())  # type: ignore[call-arg]
