"""The FastAPI application: `create_app(settings)` builds it, `lede serve` runs it on uvicorn.

The routes live in routers by concern (http_search, http_articles, http_operations, http_page);
this module opens the index in the lifespan, adds the middleware, the integrations (Slack, MCP)
and the OpenAPI limits, and mounts the routers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry, Gauge
from starlette.routing import Route

from lede.indexer.errors import LedeError
from lede.indexer.runtime import configure
from lede.indexer.searchable import WritableIndex
from lede.service.engine import EngineSettings
from lede.service.http import articles as http_articles
from lede.service.http import operations as http_operations
from lede.service.http import page as http_page
from lede.service.http import search as http_search
from lede.service.http.common import deepest_offset, errors
from lede.service.http.errors import install_error_handlers
from lede.service.http.integrations import McpEndpoint, handle_slack
from lede.service.http.middleware import BodyLimitMiddleware, MetricsMiddleware
from lede.service.schemas import ErrorOut
from lede.service.settings import Settings
from lede.service.state import ServiceState

logger = logging.getLogger(__name__)

SECURITY_SCHEME = "apiKey"


def create_app(
    settings: Settings, opener: Callable[[Settings], WritableIndex] | None = None
) -> FastAPI:
    """Build the app for one index. The index opens (and models load) in the lifespan;
    `opener` opens it (default: the directory `settings.index`)."""

    configure(settings.runtime())
    mcp_endpoint = McpEndpoint(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            state = ServiceState(settings, opener)
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
            **errors(413, 503),
        },
    )
    async def slack_command(request: Request) -> Response:
        """A Slack slash command (form-encoded, signed by Slack); replies with Block Kit JSON."""
        return await handle_slack(request, settings)

    app.include_router(http_page.router())
    app.include_router(http_search.router(settings))
    app.include_router(http_operations.router(registry))
    app.include_router(http_articles.router(settings))
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
            "offset": {"maximum": deepest_offset(settings, EngineSettings().sort_window)},
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
