"""The answer model's span reader: which words around a candidate answer the question, or none.

The sentence scorer (`model`) judges a candidate alone; the reader reads it in context:
the candidate with the sentence before and the sentence after it (a *window*), after the
question, and scores every span of the window as the answer's start and end, and the window's
first token as "no answer here" (SQuAD 2.0's null score). So it finds the figure in "It said
sales fell 4% to 789m euros" when the sentence before names the company, gives the short answer
(a name, a date, an amount with its unit, a phrase), and its span score against its null score
says whether the window holds what is asked at all. It is the bundled all-MiniLM-L6-v2 as a BERT
question-answering model with trained low-rank adapters and a span head
(`reader.safetensors`, trained by `lede train answers`).

Everything that turns text into the reader's input and its output into a span lives here, so
training, evaluation and the service read windows the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lede.indexer.encoders.embedder import resolve_model_path
from lede.indexer.encoders.light_encoder import load_tokenizer
from lede.indexer.encoders.onnx_cache import export_in_child
from lede.indexer.runtime import current
from lede.indexer.sentences import Span
from lede.service.answers.model_onnx import READER_KIND, LightReader, answer_graph

logger = logging.getLogger(__name__)

READER_WEIGHTS = "reader.safetensors"
# The longest span the reader returns, in tokens (an amount with its unit, a name, a phrase).
MAX_SPAN_TOKENS = 24
# How many of the best starts and ends are paired when looking for the best span.
TOP_BOUNDARIES = 20


@dataclass(frozen=True, slots=True)
class ReadSpan:
    """The reader's best span of one window, with character offsets into the window's text."""

    start: int
    end: int
    score: float  # the span's start logit plus its end logit
    null: float  # the "no answer here" score: the first token's start plus end logits

    @property
    def evidence(self) -> float:
        """How far the best span stands above "no answer here" (SQuAD 2.0's decision score)."""
        return self.score - self.null


def window(spans: Sequence[Span], first: int, last: int) -> Span:
    """The window of the candidate of sentences `first..last`: from the sentence before it to
    the sentence after it."""
    return spans[max(0, first - 1)][0], spans[min(len(spans) - 1, last + 1)][1]


def reader_input(title: str, text: str) -> tuple[str, int]:
    """The second segment the reader reads (the title as context, then the window's text) and
    where the window's text starts in it."""
    title = " ".join(title.replace("_", " ").split())
    prefix = f"{title} | " if title else ""
    return prefix + text, len(prefix)


def best_span(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    sequence_ids: Sequence[int | None],
    text_from: int,
    max_tokens: int = MAX_SPAN_TOKENS,
) -> ReadSpan | None:
    """The best-scoring span of the window's tokens (second segment, at or after `text_from`),
    with offsets into the window's text; None when the window lost all its tokens.

    Args:
        start_logits, end_logits: one score per token of the encoded pair.
        offsets: each token's characters in its own segment (the tokenizer's offsets).
        sequence_ids: each token's segment (0 the question, 1 the window, None special).
        text_from: where the window's text starts in the second segment.
    """
    allowed = np.asarray(
        [
            sid == 1 and offset[0] >= text_from
            for sid, offset in zip(sequence_ids, offsets, strict=False)
        ]
        + [False] * max(0, len(start_logits) - len(sequence_ids)),
        dtype=bool,
    )[: len(start_logits)]
    if not allowed.any():
        return None
    starts = np.where(allowed, start_logits, -np.inf)
    ends = np.where(allowed, end_logits, -np.inf)
    top = min(TOP_BOUNDARIES, int(allowed.sum()))
    start_rows = np.argsort(-starts, kind="stable")[:top]
    end_rows = np.argsort(-ends, kind="stable")[:top]
    best: tuple[float, int, int] | None = None
    for s in start_rows:
        for e in end_rows:
            if e < s or e - s + 1 > max_tokens:
                continue
            score = float(starts[s] + ends[e])
            if best is None or score > best[0]:
                best = (score, int(s), int(e))
    if best is None:  # every top end precedes every top start: the single best token
        row = int(np.argmax(starts + ends))
        best = (float(starts[row] + ends[row]), row, row)
    score, s, e = best
    return ReadSpan(
        start=offsets[s][0] - text_from,
        end=offsets[e][1] - text_from,
        score=score,
        null=float(start_logits[0] + end_logits[0]),
    )


def token_labels(
    offsets: Sequence[tuple[int, int]],
    sequence_ids: Sequence[int | None],
    text_from: int,
    answer: Span | None,
) -> tuple[int, int] | None:
    """The (start, end) token rows of an answer's characters in the window text, (0, 0) for
    "no answer here"; None when the answer was cut off by truncation (leave it out)."""
    if answer is None:
        return (0, 0)
    low, high = answer[0] + text_from, answer[1] + text_from
    rows = [
        row
        for row, (sid, (a, b)) in enumerate(zip(sequence_ids, offsets, strict=True))
        if sid == 1 and a < high and b > low and a >= text_from
    ]
    if not rows:
        return None
    last_char = max(b for sid, (a, b) in zip(sequence_ids, offsets, strict=True) if sid == 1)
    if last_char < high:
        return None
    return rows[0], rows[-1]


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    """The reader's part of `scorer.json`."""

    max_length: int = 192
    lora_scale: float = 2.0
    top: int = 4  # how many of the best-scored candidates the reader reads, each in its window

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ReaderConfig:
        return cls(
            max_length=int(raw.get("max_length", 192)),
            lora_scale=float(raw.get("lora_scale", 2.0)),
            top=int(raw.get("top", 4)),
        )

    def to_json(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "lora_scale": self.lora_scale, "top": self.top}


class Reader:
    """The trained reader of an answer model directory; loads lazily (see `warm_up`): without
    PyTorch where it can (the graph exported once by a child process, `model_onnx`), else as a
    PyTorch model."""

    def __init__(self, directory: Path, base_model: str, config: ReaderConfig):
        self.directory, self.base_model, self.config = directory, base_model, config
        self._light: LightReader | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def weights(self) -> Path:
        return self.directory / READER_WEIGHTS

    @property
    def graph(self) -> Path:
        """The cache file of the reader's graph (`model_onnx.answer_graph`)."""
        config = self.config
        return answer_graph(
            self.base_model, self.weights, config.lora_scale, config.max_length, READER_KIND
        )

    @property
    def light(self) -> bool:
        """Whether the reader runs without PyTorch."""
        self.warm_up()
        return self._light is not None

    def warm_up(self) -> None:
        with self._lock:
            if self._light is not None or self._model is not None:
                return
            base = Path(resolve_model_path(self.base_model))
            if current().backend == "onnx" and base.is_dir():
                graph = self.graph
                self._light = LightReader.open(graph, base)
                if self._light is None and export_in_child(
                    "lede.service.answers.model_onnx", str(self.directory), "reader", graph=graph
                ):
                    self._light = LightReader.open(graph, base)
                if self._light is not None:
                    logger.info("answer reader runs in ONNX Runtime without PyTorch")
                    return
            from lede.service.answers.model import load_adapted

            self._model = load_adapted(
                "question-answering", self.base_model, self.weights, self.config.lora_scale
            )
            self._tokenizer = load_tokenizer(
                base, max_length=self.config.max_length, pairs="only_second"
            )

    def read(self, question: str, windows: Sequence[tuple[str, str]]) -> list[ReadSpan | None]:
        """The best span of each `(title, window text)`, read after `question`."""
        if not windows:
            return []
        self.warm_up()
        seconds = [reader_input(title, text) for title, text in windows]
        questions = [question] * len(seconds)
        if self._light is not None:
            logits, encodings = self._light.outputs(questions, [s for s, _ in seconds])
            starts, ends = logits[:, :, 0], logits[:, :, 1]
        else:
            starts, ends, encodings = self._torch_logits(questions, [s for s, _ in seconds])
        return [
            best_span(starts[row], ends[row], e.offsets, e.sequence_ids, seconds[row][1])
            for row, e in enumerate(encodings)
        ]

    def _torch_logits(
        self, questions: list[str], seconds: list[str]
    ) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        import torch

        with self._lock:
            encodings = self._tokenizer.encode_batch(list(zip(questions, seconds, strict=True)))
            with torch.inference_mode():
                output = self._model(**torch_inputs(encodings))
        return output.start_logits.double().numpy(), output.end_logits.double().numpy(), encodings


def torch_inputs(encodings: Sequence[Any]) -> dict[str, Any]:
    """PyTorch inputs of a batch of padded `tokenizers` encodings."""
    import torch

    return {
        "input_ids": torch.tensor([e.ids for e in encodings]),
        "attention_mask": torch.tensor([e.attention_mask for e in encodings]),
        "token_type_ids": torch.tensor([e.type_ids for e in encodings]),
    }
