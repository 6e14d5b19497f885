"""API keys: `Authorization: Bearer <key>`, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from lede.service.http.errors import APIError
from lede.service.settings import Settings


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_is_valid(presented: str, keys: list[str]) -> bool:
    """Check against every key without stopping early, so timing reveals nothing."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    return matched


def check_key(request: Request, settings: Settings, *, write: bool) -> None:
    """Raise 401/403 unless the request may proceed."""
    if not write and not settings.read_requires_key:
        return
    if not settings.api_keys:
        raise APIError(
            403,
            "writes are disabled: no API keys are configured (set LEDE_API_KEYS)",
            code="writes_disabled",
        )
    presented = _presented_key(request)
    challenge = {"WWW-Authenticate": "Bearer"}
    if presented is None:
        raise APIError(
            401, "missing API key: send 'Authorization: Bearer <key>'", headers=challenge
        )
    if not key_is_valid(presented, settings.api_keys):
        raise APIError(401, "invalid API key", headers=challenge)
