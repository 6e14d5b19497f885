"""`lede search` / `lede ask --server URL`: the same commands against a running `lede serve`,
so a question costs a request instead of loading the model (7-11 s) in a fresh process."""

from __future__ import annotations

from typing import Any

from lede.indexer.errors import LedeError
from lede.indexer.filters import Filters

TIMEOUT_S = 60.0


class RemoteError(LedeError):
    """The server could not be reached or refused the request (its message is kept)."""


def _filter_fields(filters: Filters) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "source": list(filters.sources),
        "author": list(filters.authors),
        "tag": list(filters.tags),
        "article_id": list(filters.article_ids),
    }
    for name in ("since", "until"):
        value = getattr(filters, name)
        if value is not None:
            fields[name] = value.isoformat()
    return {key: value for key, value in fields.items() if value}


def _call(server: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    url = server.rstrip("/") + path
    try:
        response = httpx.request(method, url, json=body, timeout=TIMEOUT_S)
    except httpx.HTTPError as error:
        raise RemoteError(f"cannot reach the Lede server at {server}: {error}") from None
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        raise RemoteError(
            f"{url} answered HTTP {response.status_code} without JSON; is it a Lede server?"
        ) from None
    if response.status_code >= 400:
        problem = data.get("error", {}) if isinstance(data, dict) else {}
        message = problem.get("message", response.text)
        raise RemoteError(f"the server answered {response.status_code}: {message}")
    return data


def search(server: str, query: str, mode: str, k: int, filters: Filters) -> dict[str, Any]:
    """POST /search; the same JSON as `lede search --json` prints."""
    body = {"query": query, "mode": mode, "k": k, **_filter_fields(filters)}
    return _call(server, "POST", "/search", body)


def ask(
    server: str, question: str, mode: str, filters: Filters, threshold: float | None
) -> dict[str, Any]:
    """POST /answer; the same JSON as `lede ask --json` prints."""
    body: dict[str, Any] = {"question": question, "mode": mode, **_filter_fields(filters)}
    if threshold is not None:
        body["threshold"] = threshold
    return _call(server, "POST", "/answer", body)
