"""HTTP routes for operators: /health, /ready and the Prometheus /metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from lede.service.http.common import errors, ready_state
from lede.service.schemas import HealthOut, ReadyOut
from lede.service.state import ServiceState


def router(registry: CollectorRegistry) -> APIRouter:
    routes = APIRouter(tags=["operations"])

    @routes.get("/health", response_model=HealthOut)
    def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @routes.get("/ready", response_model=ReadyOut, responses=errors(503))
    def ready(state: Annotated[ServiceState, Depends(ready_state)]) -> dict[str, Any]:
        """The index is open and the models are warm (503 until then)."""
        return {"ready": True, **state.index.stats()}

    @routes.get("/metrics", response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics: requests and latency per route, index size."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return routes
