"""HTTP routes for articles: read one, add or update (one or a batch), replace, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lede.indexer.errors import ArticleNotFoundError
from lede.indexer.models import Article
from lede.service.http.common import (
    WRITE_ERRORS,
    ReadState,
    WriteState,
    check_batch,
    check_batch_size,
    errors,
    read_errors,
    to_article,
)
from lede.service.schemas import (
    ArticleBatch,
    ArticleBody,
    ArticleOut,
    ArticleWrite,
    DeleteOut,
    WriteOut,
)
from lede.service.settings import Settings
from lede.service.state import ServiceState


def write(state: ServiceState, articles: list[Article]) -> dict[str, Any]:
    """Store a checked batch; the shape of `WriteOut`."""
    check_batch(state, articles)
    report = state.index.add(articles, lock_timeout=state.settings.write_timeout)
    state.wrote = True
    return {**report.counts(), "ids": [a.id for a in articles]}


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(tags=["articles"])

    @routes.get(
        "/articles/{article_id:path}",
        response_model=ArticleOut,
        responses=read_errors(settings, 404),
    )
    def get_article(state: ReadState, article_id: str) -> dict[str, Any]:
        """A stored article with the spans of its chunks."""
        found = state.index.article(article_id)
        if found is None:
            raise ArticleNotFoundError(f"no article with id {article_id!r}")
        article, chunks = found
        return {
            **article.model_dump(mode="json", exclude={"published_at"}),
            "published_at": article.published_iso,
            "chunks": [
                {"chunk_id": c.chunk_id, "ordinal": c.ordinal, "start": c.start, "end": c.end}
                for c in chunks
            ],
        }

    @routes.post("/articles", response_model=WriteOut, responses=errors(*WRITE_ERRORS, 409))
    def post_articles(state: WriteState, body: ArticleWrite) -> dict[str, Any]:
        """Add or update one article, or a batch as `{"articles": [...]}`."""
        items = body.articles if isinstance(body, ArticleBatch) else [body]
        check_batch_size(state, len(items))  # before converting a huge batch
        return write(state, [to_article(item) for item in items])

    @routes.put(
        "/articles/{article_id:path}", response_model=WriteOut, responses=errors(*WRITE_ERRORS)
    )
    def put_article(state: WriteState, article_id: str, body: ArticleBody) -> dict[str, Any]:
        """Create or replace the article with this id."""
        return write(state, [to_article(body, article_id)])

    @routes.delete(
        "/articles/{article_id:path}",
        response_model=DeleteOut,
        responses=errors(401, 403, 404, 503, 507),
    )
    def delete_article(state: WriteState, article_id: str) -> dict[str, str]:
        """Delete the article from the database and every view."""
        if not state.index.delete([article_id], lock_timeout=state.settings.write_timeout):
            raise ArticleNotFoundError(f"no article with id {article_id!r}")
        state.wrote = True
        return {"deleted": article_id}

    return routes
