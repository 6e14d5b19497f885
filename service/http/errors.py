"""One JSON error shape for every failure, and the one place domain errors map to statuses.

{"error": {"code": "not_found", "message": "...", "details": ...}}
"""

from __future__ import annotations

import logging
from difflib import get_close_matches
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lede.indexer.errors import (
    ArticleNotFoundError,
    IndexFormatError,
    IndexLockedError,
    InvalidArticleError,
    LedeError,
    ShardUnavailableError,
    StorageError,
)

logger = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    507: "storage_error",
    422: "validation_error",
    503: "unavailable",
}


class APIError(Exception):
    """An error a route raises on purpose, with its status and code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = headers


def invalid_field(field: str, message: str, **details: Any) -> APIError:
    """A 422 in the shape of a request validation error: one problem, naming its field."""
    return APIError(
        422,
        f"invalid request: {field}: {message}",
        code="validation_error",
        details=[{"field": field, "message": message, "type": "limit", **details}],
    )


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _domain_status(error: LedeError) -> tuple[int, str]:
    if isinstance(error, ArticleNotFoundError):
        return 404, "not_found"
    if isinstance(error, InvalidArticleError):
        return 422, "invalid_article"
    if isinstance(error, IndexLockedError):
        return 503, "index_busy"
    if isinstance(error, ShardUnavailableError):
        return 503, "shard_unavailable"
    if isinstance(error, StorageError):
        return 507, "storage_error"
    if isinstance(error, IndexFormatError):
        return 503, "index_unavailable"
    return 400, "bad_request"


def _field(location: Any) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    if parts and parts[0] in _UNION_TAGS:  # POST /articles: the shape the body chose
        parts = parts[1:]
    return ".".join(parts) or "body"


_UNION_TAGS = {"article", "batch"}


def _unknown(field: str, path: str) -> str:
    """What to say about a field or parameter the route does not have."""
    from lede.service import schemas

    models: dict[str, type[BaseModel]] = {
        "/search": schemas.SearchRequest,
        "/answer": schemas.AnswerRequest,
        "/articles": schemas.ArticleIn,
    }
    model = next((m for prefix, m in models.items() if path.startswith(prefix)), None)
    name = field.rsplit(".", 1)[-1]
    known = sorted(model.model_fields) if model is not None else []
    close = get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown field {name!r}{hint} (see /docs for the fields of this route)"


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so that every error leaves in the one shape."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, error: APIError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": _field(item.get("loc", ())),
                "message": item.get("msg", ""),
                "type": item.get("type", ""),
            }
            for item in error.errors()
        ]
        if any(p["type"] == "json_invalid" for p in problems):
            return error_response(400, "invalid_json", "request body is not valid JSON", problems)
        for problem in problems:
            if problem["type"] == "extra_forbidden":
                problem["message"] = _unknown(problem["field"], request.url.path)
        shown = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return error_response(422, "validation_error", f"invalid request: {shown}{more}", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(error.status_code, "error")
        headers = dict(error.headers) if error.headers else None
        if error.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(app, request))}
        return error_response(error.status_code, code, str(error.detail), None, headers)

    @app.exception_handler(LedeError)
    async def _domain(request: Request, error: LedeError) -> JSONResponse:
        status, code = _domain_status(error)
        return error_response(status, code, str(error))

    # Everything a client can get wrong is validated before a route runs (or raised as an
    # APIError / LedeError); any other exception, a ValueError included, is a bug: 500.
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal server error")


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's);
    routers mounted with `include_router` (no prefix) are walked too."""
    methods: set[str] = set()
    pending = list(app.router.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps routers
        if included is not None:
            pending.extend(included.routes)
            continue
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods.update(route_methods)
    return sorted(methods)
