"""HTTP routes that read: /search (GET and POST), /answer and /facets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from lede.service.http.common import (
    ReadState,
    check_limits,
    deepest_offset,
    json_response,
    read_errors,
)
from lede.service.http.errors import invalid_field
from lede.service.schemas import (
    AnswerRequest,
    AnswerResponse,
    FacetsOut,
    SearchBody,
    SearchRequest,
    SearchResponse,
)
from lede.service.settings import Settings
from lede.service.state import ServiceState


def search(state: ServiceState, request: SearchRequest) -> dict[str, Any]:
    """One search request through the engine, after the service's own limits."""
    check_limits(state, "query", request.query, request.k)
    window = state.engine.settings.sort_window
    deepest = deepest_offset(state.settings, window)
    if request.offset > deepest:
        raise invalid_field(
            "offset",
            f"is {request.offset}; the limit is {deepest} (pages reach {window} hits deep): "
            "narrow the query or its filters",
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
        allow_partial=request.allow_partial,
    )
    return result.to_json()


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(tags=["search"])
    body_reads = read_errors(settings, 400, 413, 422)

    @routes.get("/facets", response_model=FacetsOut, responses=read_errors(settings))
    def facets(state: ReadState) -> dict[str, Any]:
        """Values to filter by: the sources and tags present in the index."""
        return state.index.facet_values()

    # The hot routes serialize with orjson and skip FastAPI's response re-validation (the
    # engine builds exactly the documented shape; tests check it against the schema).
    @routes.get("/search", response_model=SearchResponse, responses=read_errors(settings, 422))
    def search_get(state: ReadState, params: Annotated[SearchRequest, Query()]) -> Response:
        """Ranked passages. Repeat list parameters (`?tag=a&tag=b`) to allow several values."""
        return json_response(search(state, params))

    @routes.post("/search", response_model=SearchResponse, responses=body_reads)
    def search_post(state: ReadState, body: SearchBody) -> Response:
        """Ranked passages (same fields as GET /search, as a JSON body)."""
        return json_response(search(state, body))

    @routes.post("/answer", response_model=AnswerResponse, responses=body_reads)
    def answer(state: ReadState, body: AnswerRequest) -> Response:
        """An extractive answer with numbered citations, or `answer: null` and the best passages."""
        check_limits(state, "question", body.question)
        result = state.answerer.ask(
            body.question, mode=body.mode, filters=body.to_filters(), threshold=body.threshold
        )
        return json_response(result.to_json())

    return routes
