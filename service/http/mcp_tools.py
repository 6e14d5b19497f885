"""MCP (Model Context Protocol) tools for LLM agents: search, answer, get_article.

Served over stdio by `lede mcp --index DIR` and over streamable HTTP at `/mcp` by the service.
Tool descriptions are written for a model to read; every result carries citations.

No `from __future__ import annotations` here: the MCP SDK evaluates the tools' annotations
to build their JSON schemas.
"""

from typing import Annotated, Any

from pydantic import Field

from lede.indexer.filters import Filters
from lede.service.answers.answerer import Answerer
from lede.service.engine import ModeName, describe_modes

INSTRUCTIONS = (
    "Lede searches an archive of articles (news, docs, knowledge base). Use `answer` for a "
    "direct question: it returns a short extractive answer quoted from an article with "
    "numbered citations, or answer=null when the archive holds no confident answer (then say "
    "so; do not guess). Use `search` to explore or to gather several passages; use "
    "`get_article` to read a whole cited article. Cite sources by their url or article_id."
)


def _filters(
    source: list[str] | None, tag: list[str] | None, since: str | None, until: str | None
) -> Filters:
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        return Filters.from_values(sources=source, tags=tag, since=since, until=until)
    except ValueError as error:  # the model's mistake: it must read the message to fix it
        raise ToolError(str(error)) from None


SourceFilter = Annotated[list[str] | None, Field(description="Only these publications.")]
TagFilter = Annotated[list[str] | None, Field(description="Only articles with any of these tags.")]
SinceFilter = Annotated[str | None, Field(description="Published on or after (ISO 8601 date).")]
UntilFilter = Annotated[str | None, Field(description="Published on or before (ISO 8601 date).")]
MAX_K = 50


def build_mcp_server(answerer: Answerer) -> Any:
    """An `MCPServer` whose tools run on `answerer` (and its search engine and index)."""
    from mcp.server import MCPServer

    engine = answerer.engine
    server = MCPServer("lede", instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool(
        description=(
            "Search the article archive and return the best-matching passages, each with its "
            "article id, title, url, publication date, the passage text and its character span "
            "in the article (a citation). Use for exploring a topic or collecting evidence."
        )
    )
    def search(
        query: Annotated[
            str,
            Field(
                description="What to look for, in natural language or keywords.",
                min_length=1,
                max_length=1000,
            ),
        ],
        k: Annotated[int, Field(description="How many passages to return.", ge=1, le=MAX_K)] = 5,
        mode: Annotated[ModeName, Field(description=describe_modes())] = "hybrid",
        source: SourceFilter = None,
        tag: TagFilter = None,
        since: SinceFilter = None,
        until: UntilFilter = None,
    ) -> dict[str, Any]:
        result = engine.search(query, mode=mode, k=k, filters=_filters(source, tag, since, until))
        return {
            "results": [
                {
                    "article_id": h.record.article_id,
                    "title": h.record.title,
                    "url": h.record.url,
                    "published_at": h.record.published_at,
                    "source": h.record.source,
                    "passage": h.record.text,
                    "start": h.record.start,
                    "end": h.record.end,
                    "score": round(h.score, 6),
                }
                for h in result.hits
            ]
        }

    @server.tool(
        description=(
            "Answer a question from the article archive. Returns `answer` (a sentence quoted "
            "from an article) with `confidence` in [0, 1] and numbered `citations` (article id, "
            "title, url, date and the exact quoted span), plus `markdown` ready to show a user. "
            "`answer` is null when no confident answer exists: then tell the user the archive "
            "does not say, and optionally offer the returned passages."
        )
    )
    def answer(
        question: Annotated[
            str,
            Field(description="The question, in natural language.", min_length=1, max_length=1000),
        ],
        source: SourceFilter = None,
        tag: TagFilter = None,
        since: SinceFilter = None,
        until: UntilFilter = None,
    ) -> dict[str, Any]:
        result = answerer.ask(question, filters=_filters(source, tag, since, until))
        data = result.to_json()
        data["passages"] = [
            {
                "article_id": p["article_id"],
                "title": p["title"],
                "url": p["url"],
                "passage": p["text"],
            }
            for p in data["passages"]
        ]
        return data

    @server.tool(
        description=(
            "Fetch one whole article by its article_id (as returned in citations or search "
            "results): title, url, date, source, author, tags and full text."
        )
    )
    def get_article(
        id: Annotated[str, Field(description="The article_id.", min_length=1, max_length=512)],
    ) -> dict[str, Any]:
        from mcp.server.mcpserver.exceptions import ToolError

        found = engine.index.article(id)
        if found is None:  # a ToolError's message reaches the client; others only log
            raise ToolError(f"no article with id {id!r}; use an article_id from search results")
        article, _ = found
        return {
            **article.model_dump(mode="json", exclude={"published_at", "metadata"}),
            "published_at": article.published_iso,
        }

    return server
