"""The search page: static HTML, JavaScript and CSS shipped in the package (no build step)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from lede.service.http.errors import APIError

_STATIC = {
    name: (files("lede.service.http") / "static" / name).read_bytes()
    for name in ("index.html", "app.js", "style.css")
}


def router() -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get("/")
    def page() -> Response:
        """The search page (static HTML, no build step, no network)."""
        return Response(_STATIC["index.html"], media_type="text/html; charset=utf-8")

    @routes.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC or name == "index.html":
            raise APIError(404, f"no static file {name!r}")
        media = "text/css" if name.endswith(".css") else "text/javascript"
        return Response(_STATIC[name], media_type=f"{media}; charset=utf-8")

    return routes
