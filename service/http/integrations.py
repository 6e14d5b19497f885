"""HTTP glue for the chat integrations: the Slack endpoint and the mounted MCP endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from lede.service.http.auth import key_is_valid
from lede.service.http.common import check_ready, json_response
from lede.service.http.errors import APIError, error_response
from lede.service.http.mcp_tools import build_mcp_server
from lede.service.http.slack import answer_message, command_text, usage_message, verify, wants_help
from lede.service.settings import Settings
from lede.service.state import ServiceState


async def handle_slack(request: Request, settings: Settings) -> Response:
    """Verify, then answer the slash command's text (or show usage for an empty one)."""
    if not settings.slack_signing_secret:
        raise APIError(
            403,
            "the Slack integration is disabled: set LEDE_SLACK_SIGNING_SECRET",
            code="slack_disabled",
        )
    body = await request.body()
    if len(body) > settings.slack_max_body_bytes:
        raise APIError(
            413,
            f"request body exceeds the limit of {settings.slack_max_body_bytes} bytes",
            details={"limit_bytes": settings.slack_max_body_bytes},
        )
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    if not timestamp or not signature:
        raise APIError(401, "missing X-Slack-Request-Timestamp or X-Slack-Signature header")
    if not verify(settings.slack_signing_secret, body, timestamp, signature):
        raise APIError(401, "invalid Slack signature or request older than five minutes")
    state = check_ready(getattr(request.app.state, "lede", None))
    question = command_text(body)
    if wants_help(question):
        return json_response(usage_message())
    if len(question) > settings.max_query_chars:
        note = (
            f"Your question is {len(question):,} characters; the limit is "
            f"{settings.max_query_chars:,}. Ask it more briefly."
        )
        return json_response(usage_message(note))
    answer = await run_in_threadpool(state.answerer.ask, question)
    return json_response(answer_message(question, answer))


class McpEndpoint:
    """ASGI endpoint for `/mcp`: the MCP SDK's streamable HTTP app, behind the read auth."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._app: Any = None

    @asynccontextmanager
    async def serving(self, state: ServiceState) -> AsyncIterator[None]:
        from mcp.server.transport_security import TransportSecuritySettings

        server = build_mcp_server(state.answerer)
        security = None
        if self.settings.host not in ("127.0.0.1", "localhost", "::1"):
            security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        self._app = server.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            json_response=True,
            host=self.settings.host,
            transport_security=security,
        )
        async with server.session_manager.run():
            try:
                yield
            finally:
                self._app = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            response = error_response(503, "starting", "the MCP endpoint is not ready yet")
            await response(scope, receive, send)
            return
        if self.settings.read_requires_key:
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not key_is_valid(
                token.strip(), self.settings.api_keys
            ):
                response = error_response(
                    401,
                    "unauthorized",
                    "missing or invalid API key",
                    None,
                    {"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)
