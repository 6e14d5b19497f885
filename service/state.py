"""What the running service holds: the open index, its engine and answerer, readiness."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from lede.indexer.directory import open_index
from lede.indexer.searchable import WritableIndex
from lede.service.answers.answerer import Answerer, AnswerSettings
from lede.service.engine import EngineSettings, SearchEngine
from lede.service.models_optional import CrossEncoderReranker, SpanReader
from lede.service.settings import Settings

logger = logging.getLogger(__name__)


class ServiceState:
    """Opened in the app's lifespan; `ready` once the models are warm."""

    def __init__(
        self, settings: Settings, opener: Callable[[Settings], WritableIndex] | None = None
    ):
        """`opener` opens the index (default: the directory `settings.index`, one index or
        sharded; a Ray replica passes one that reaches the shard actors)."""
        self.settings = settings
        self.index: WritableIndex = (
            opener(settings) if opener else open_index(settings.index, model=settings.model)
        )
        reranker = (
            CrossEncoderReranker(settings.reranker_model) if settings.reranker_model else None
        )
        reader = SpanReader(settings.reader_model) if settings.reader_model else None
        self.engine = SearchEngine(
            self.index,
            EngineSettings(
                fusion=settings.fusion,
                normalization=settings.normalization,
                rrf_k=settings.rrf_k,
                alpha=settings.alpha,
                candidates=settings.candidates,
                ef_search=settings.ef_search,
                nprobe=settings.nprobe,
            ),
            reranker,
        )
        self.answerer = Answerer(
            self.engine,
            AnswerSettings(threshold=settings.answer_threshold, passages=settings.answer_passages),
            reader,
        )
        self.ready = threading.Event()
        self.warm_up_error: str | None = None
        self.wrote = False

    def warm_up(self) -> None:
        try:
            self.answerer.warm_up()
        except Exception as error:  # reported by /ready; the process keeps serving /health
            logger.exception("warm-up of %s failed", self.settings.index)
            self.warm_up_error = f"{type(error).__name__}: {error}"
            return
        self.ready.set()
        logger.info("index %s ready", self.settings.index)

    def not_ready(self) -> str | None:
        """Why requests must wait (models loading, or their warm-up failed), or None."""
        if self.ready.is_set():
            return None
        return self.warm_up_error or "models are still loading; retry shortly"

    def close(self) -> None:
        if self.wrote:
            try:
                self.index.checkpoint_if_due(lock_timeout=10)
            except Exception:
                logger.exception("checkpoint at shutdown failed; the log will be replayed")
        self.index.close()
