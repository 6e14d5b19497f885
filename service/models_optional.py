"""Optional models, off by default: a cross-encoder reranker and a span-extraction reader."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lede.indexer.encoders.embedder import resolve_model_path

logger = logging.getLogger(__name__)


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a sentence-transformers CrossEncoder."""

    def __init__(self, model: str, *, batch_size: int = 32, device: str = "cpu"):
        self.model_name = model
        self._batch_size = batch_size
        self._device = device
        self._model: Any = None

    def warm_up(self) -> None:
        if self._model is None:
            from sentence_transformers import CrossEncoder

            logger.info("loading reranker %s", self.model_name)
            self._model = CrossEncoder(resolve_model_path(self.model_name), device=self._device)

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        self.warm_up()
        if not passages:
            return []
        scores = self._model.predict(
            [(query, passage) for passage in passages], batch_size=self._batch_size
        )
        return [
            float(s) for s in np.asarray(scores, dtype=np.float64).reshape(len(passages), -1)[:, 0]
        ]


@dataclass(frozen=True, slots=True)
class Span:
    """An extracted answer: `[start, end)` into the passage it came from."""

    passage: int
    start: int
    end: int
    score: float


class SpanReader:
    """Extractive question answering with any SQuAD-style transformers model."""

    def __init__(self, model: str, *, max_length: int = 384, max_answer_tokens: int = 30):
        self.model_name = model
        self._max_length = max_length
        self._max_answer_tokens = max_answer_tokens
        self._model: Any = None
        self._tokenizer: Any = None

    def warm_up(self) -> None:
        if self._model is None:
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            path = resolve_model_path(self.model_name)
            logger.info("loading span reader %s", self.model_name)
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForQuestionAnswering.from_pretrained(path)
            model.eval()
            self._model = model

    def best_span(self, question: str, passages: Sequence[str]) -> Span | None:
        """The highest-scoring answer span over all passages, or None."""
        import torch

        self.warm_up()
        if not passages:
            return None
        encoded = self._tokenizer(
            [question] * len(passages),
            list(passages),
            truncation="only_second",
            max_length=self._max_length,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = encoded.pop("offset_mapping").tolist()
        with torch.no_grad():
            output = self._model(**encoded)
        start_logp = torch.log_softmax(output.start_logits, dim=-1).numpy()
        end_logp = torch.log_softmax(output.end_logits, dim=-1).numpy()
        best: Span | None = None
        for index in range(len(passages)):
            context = [i for i, s in enumerate(encoded.sequence_ids(index)) if s == 1]
            if not context:
                continue
            lo, hi = context[0], context[-1]
            starts = start_logp[index][lo : hi + 1]
            ends = end_logp[index][lo : hi + 1]
            # score[i, j] = start[i] + end[j] for i <= j < i + max_answer_tokens
            grid = starts[:, None] + ends[None, :]
            size = len(starts)
            valid = np.triu(np.ones((size, size), dtype=bool)) & ~np.triu(
                np.ones((size, size), dtype=bool), k=self._max_answer_tokens
            )
            grid = np.where(valid, grid, -np.inf)
            i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)
            score = float(np.exp(grid[i, j]))
            start_char = int(offsets[index][lo + i][0])
            end_char = int(offsets[index][lo + j][1])
            if end_char > start_char and (best is None or score > best.score):
                best = Span(index, start_char, end_char, score)
        return best
