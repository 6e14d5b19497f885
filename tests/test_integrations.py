"""Slack slash command and MCP tools, against a real uvicorn server and a real `lede mcp`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from lede.eval.local_server import LEDE
from lede.service.settings import Settings
from tests.server import running_server

pytestmark = [pytest.mark.model, pytest.mark.server]
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
KEY = "integration-key-0123456789"


@pytest.fixture(scope="module")
def index_dir(sample_index_dir: Path) -> Path:
    return sample_index_dir


@pytest.fixture(scope="module")
def base_url(index_dir: Path) -> Iterator[str]:
    settings = Settings(
        index=index_dir, slack_signing_secret=SECRET, api_keys=[KEY], read_requires_key=True
    )
    with running_server(settings) as url:
        yield url


def _signed(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _slack(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{url}/integrations/slack/command", content=body, headers=headers, timeout=60
    )


def _form(text: str) -> bytes:
    return urlencode(
        {"command": "/lede", "text": text, "user_name": "ana", "team_id": "T1"}
    ).encode()


def test_slack_answers_with_block_kit_and_numbered_citations(base_url: str) -> None:
    body = _form("Who plays Ethan Hunt in Mission: Impossible 7?")
    reply = _slack(base_url, body, _signed(body))
    assert reply.status_code == 200, reply.text
    message = reply.json()
    assert message["response_type"] == "in_channel"
    texts = json.dumps(message["blocks"])
    assert "Tom Cruise" in texts and "[1]" in texts
    assert "<https://news.example.org/rome-daily-wire/mi7-rome-cruise-atwell|" in texts
    assert {b["type"] for b in message["blocks"]} <= {"section", "context"}


def test_slack_abstains_and_shows_usage(base_url: str) -> None:
    body = _form("What is the boiling point of mercury?")
    message = _slack(base_url, body, _signed(body)).json()
    texts = json.dumps(message["blocks"])
    assert "No answer found" in texts and "Closest passages" in texts
    assert message["response_type"] == "ephemeral"  # only the asker sees a non-answer
    for text in ("   ", "help", "HELP", "--help"):
        empty = _form(text)
        usage = _slack(base_url, empty, _signed(empty)).json()
        assert usage["response_type"] == "ephemeral" and "/lede" in usage["text"], text
    long = _form("why " * 300)
    note = _slack(base_url, long, _signed(long)).json()
    assert note["response_type"] == "ephemeral" and "the limit is 1,000" in note["text"]


def test_slack_rejects_bad_signatures_stale_requests_and_large_bodies(base_url: str) -> None:
    body = _form("Who plays Ethan Hunt?")
    wrong = _signed(body, secret="not-the-secret")
    assert _slack(base_url, body, wrong).status_code == 401
    tampered = _signed(body)
    assert _slack(base_url, body + b"&x=1", tampered).status_code == 401
    stale = _signed(body, timestamp=int(time.time()) - 6 * 60)
    assert _slack(base_url, body, stale).status_code == 401
    missing = {"Content-Type": "application/x-www-form-urlencoded"}
    response = _slack(base_url, body, missing)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    large = _form("x" * 20_000)
    too_large = _slack(base_url, large, _signed(large))
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "payload_too_large"


def test_slack_refuses_without_a_signing_secret(index_dir: Path) -> None:
    with running_server(Settings(index=index_dir)) as url:
        body = _form("Who plays Ethan Hunt?")
        response = _slack(url, body, _signed(body))
        assert response.status_code == 403 and response.json()["error"]["code"] == "slack_disabled"


async def _exercise(client: Any) -> dict[str, Any]:
    tools = await client.list_tools()
    names = {tool.name for tool in tools.tools}
    searched = await client.call_tool("search", {"query": "Rome car chase", "k": 3})
    answered = await client.call_tool(
        "answer", {"question": "Who plays Ethan Hunt in Mission: Impossible 7?"}
    )
    article = await client.call_tool("get_article", {"id": "mi7-cast-returns"})
    missing = await client.call_tool("get_article", {"id": "no-such-article"})
    bad_date = await client.call_tool("search", {"query": "Rome", "since": "last week"})
    return {
        "names": names,
        "schemas": {tool.name: tool.input_schema for tool in tools.tools},
        "search": searched.structured_content,
        "answer": answered.structured_content,
        "article": article.structured_content,
        "missing_is_error": missing.is_error,
        "missing_says": " ".join(getattr(c, "text", "") for c in missing.content),
        "bad_date_says": " ".join(getattr(c, "text", "") for c in bad_date.content),
    }


def _check(result: dict[str, Any]) -> None:
    assert result["names"] == {"search", "answer", "get_article"}
    assert result["schemas"]["search"]["required"] == ["query"]
    assert "description" in result["schemas"]["answer"]["properties"]["question"]
    hits = result["search"]["results"]
    assert len(hits) == 3 and hits[0]["article_id"].startswith("mi7")
    answer = result["answer"]
    assert "Tom Cruise" in answer["answer"]
    citation = answer["citations"][0]
    assert citation["article_id"] == "mi7-rome-cruise-atwell" and citation["url"]
    assert "Pom Klementieff" in result["article"]["text"]
    assert result["missing_is_error"]
    # The reason reaches the client (not just "Error executing tool get_article").
    assert "no article with id 'no-such-article'" in result["missing_says"]
    assert "since" in result["bad_date_says"] and "ISO 8601" in result["bad_date_says"]


def test_mcp_over_stdio(index_dir: Path) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    async def run() -> dict[str, Any]:
        params = StdioServerParameters(command=LEDE, args=["mcp", "--index", str(index_dir)])
        async with Client(params) as client:
            return await _exercise(client)

    _check(asyncio.run(run()))


def test_mcp_over_http_with_read_auth(base_url: str) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def run(headers: dict[str, str]) -> dict[str, Any]:
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            transport = streamable_http_client(f"{base_url}/mcp", http_client=http)
            async with Client(transport) as client:
                return await _exercise(client)

    _check(asyncio.run(run({"Authorization": f"Bearer {KEY}"})))
    refused = httpx.post(
        f"{base_url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=30
    )
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
