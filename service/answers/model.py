"""The learned answer scorer: a cross-encoder over (question, title + candidate answer).

It is the bundled all-MiniLM-L6-v2 read as a BERT sequence classifier whose top layers, pooler
and one-logit head were fine-tuned by `lede train answers` (eval/train/scorer.py) on the
WikiQA and TrecQA train splits. Only the tensors that training changed ship with Lede
(`service/answers/weights/weights.safetensors`, float16, under 10 MB); the rest are the embedding
model's own weights, so nothing is downloaded. `scorer.json` beside them holds the base model,
the input length, and the Platt calibration and abstention threshold fitted on dev splits.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lede.indexer.encoders.embedder import (
    Embedder,
    SentenceTransformerEmbedder,
    resolve_model_path,
)
from lede.indexer.encoders.onnx_cache import export_in_child
from lede.indexer.runtime import current
from lede.service.answers.judge import Combiner, Reading, read_top
from lede.service.answers.model_onnx import LightClassifier, answer_graph
from lede.service.answers.reader import Reader, ReaderConfig
from lede.service.answers.scoring import PassageText, Scored

logger = logging.getLogger(__name__)

BUNDLED = Path(__file__).parent / "weights"
WEIGHTS = "weights.safetensors"
CONFIG = "scorer.json"
BATCH_SIZE = 4  # candidates per forward pass (see `AnswerModel`)
# The bi-encoder re-scores only this many candidates, those with the best cross-encoder logits:
# embedding a candidate costs about what scoring it does, and on dev re-scoring the top 3-8
# ranks as well as re-scoring all; 3 is the cheapest of those (decision 48).
SIMILARITY_TOP = 3


def candidate_text(title: str, text: str) -> str:
    """The second segment the cross-encoder reads: the title as context, then the candidate."""
    title = " ".join(title.replace("_", " ").split())
    return f"{title} | {text}" if title else text


@dataclass(frozen=True, slots=True)
class Calibration:
    """Platt scaling over the best candidate's logit and its margin over the runner-up:
    P(answer right) = 1 / (1 + exp(-(slope * logit + margin_slope * margin + intercept)))."""

    slope: float = 1.0
    intercept: float = 0.0
    margin_slope: float = 0.0

    def __call__(self, logit: float, margin: float = 0.0) -> float:
        value = self.slope * logit + self.margin_slope * margin + self.intercept
        if value >= 0:
            return 1.0 / (1.0 + math.exp(-value))
        exp = math.exp(value)
        return exp / (1.0 + exp)


@dataclass(frozen=True, slots=True)
class ScorerConfig:
    base_model: str
    trained_prefixes: tuple[str, ...]
    max_length: int
    calibration: Calibration
    threshold: float
    training: dict[str, Any]
    lora_scale: float = 0.0  # weights holding `<layer>.lora_a/lora_b` adapters merge at this scale
    # The score adds this times the base model's cosine similarity of the question and the
    # candidate (as a bi-encoder, the embedding model it is); 0: the cross-encoder alone.
    similarity_weight: float = 0.0
    # The span reader (`reader`, weights in `reader.safetensors`) and the judge over
    # what it read (`judge`); with both, `calibration` reads the judge's score.
    reader: ReaderConfig | None = None
    combiner: Combiner | None = None

    @classmethod
    def read(cls, directory: Path) -> ScorerConfig:
        raw = json.loads((directory / CONFIG).read_text())
        return cls(
            base_model=raw["base_model"],
            trained_prefixes=tuple(raw["trained_prefixes"]),
            max_length=int(raw["max_length"]),
            calibration=Calibration(**raw.get("calibration", {})),
            threshold=float(raw.get("threshold", 0.5)),
            training=dict(raw.get("training", {})),
            lora_scale=float(raw.get("lora_scale", 0.0)),
            similarity_weight=float(raw.get("similarity_weight", 0.0)),
            reader=ReaderConfig.from_json(raw["reader"]) if raw.get("reader") else None,
            combiner=Combiner.from_json(raw["combiner"]) if raw.get("combiner") else None,
        )

    def write(self, directory: Path) -> None:
        """Write `scorer.json` into `directory` (what `read` reads back)."""
        (directory / CONFIG).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def to_json(self) -> dict[str, Any]:
        return {
            "base_model": self.base_model,
            "trained_prefixes": list(self.trained_prefixes),
            "max_length": self.max_length,
            "calibration": {
                "slope": self.calibration.slope,
                "margin_slope": self.calibration.margin_slope,
                "intercept": self.calibration.intercept,
            },
            "threshold": self.threshold,
            "lora_scale": self.lora_scale,
            "similarity_weight": self.similarity_weight,
            "reader": self.reader.to_json() if self.reader else None,
            "combiner": self.combiner.to_json() if self.combiner else None,
            "training": self.training,
        }


class AnswerModel:
    """Scores candidate answers to a question; loads lazily (see `warm_up`).

    Args:
        directory: a folder with `scorer.json` and `weights.safetensors` (the bundled one by
            default; `lede train answers --out DIR` writes another).
        batch_size: candidates per forward pass. Candidates go longest first, so a small batch
            pads little; 4 holds a server's memory for activations about 50 MB below 32 and
            scores a question's candidates no slower (decision 46).
        embedder: the base model as a bi-encoder, for the similarity term of the score (an
            index's own embedder, so a server holds the model once); one of another model is
            ignored, and without one the model makes its own when first needed.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        embedder: Embedder | None = None,
    ):
        self.directory = directory or BUNDLED
        if not (self.directory / CONFIG).exists():
            raise FileNotFoundError(
                f"no answer model in {self.directory} (expected {CONFIG} and {WEIGHTS}); "
                "run `lede train answers` to build one"
            )
        self.config = ScorerConfig.read(self.directory)
        self._batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._light: LightClassifier | None = None
        self._lock = threading.Lock()
        self._embedder = embedder
        self._embedder_checked = False
        self.reader = (
            Reader(self.directory, self.config.base_model, self.config.reader)
            if self.config.reader
            else None
        )

    def warm_up(self) -> None:
        """Load the model: without PyTorch where it can (`model_onnx`; the first load on a
        machine exports the graph in a child process), else the PyTorch classifier; and the
        bi-encoder when the score uses it."""
        if self.config.similarity_weight:
            warm = getattr(self.bi_encoder, "warm_up", None)
            if warm is not None:
                warm()
        if self.reader is not None:
            self.reader.warm_up()
        with self._lock:
            if self._model is not None or self._light is not None:
                return
            if current().backend == "onnx":
                self._light = self._load_light()
                if self._light is not None:
                    return
            self._model, self._tokenizer = load_classifier(
                self.config.base_model, self.directory / WEIGHTS, self.config.lora_scale
            )

    def _load_light(self) -> LightClassifier | None:
        base = Path(resolve_model_path(self.config.base_model))
        if not base.is_dir():
            return None
        graph = self.graph
        light = LightClassifier.open(graph, base)
        if light is None and export_in_child(
            "lede.service.answers.model_onnx", str(self.directory), graph=graph
        ):
            light = LightClassifier.open(graph, base)
        if light is not None:
            logger.info("answer model runs in ONNX Runtime without PyTorch")
        return light

    @property
    def graph(self) -> Path:
        """The cache file of the classifier's graph (`model_onnx.answer_graph`)."""
        config = self.config
        weights = self.directory / WEIGHTS
        return answer_graph(config.base_model, weights, config.lora_scale, config.max_length)

    @property
    def light(self) -> bool:
        """Whether the model runs without PyTorch."""
        self.warm_up()
        return self._light is not None

    @property
    def bi_encoder(self) -> Embedder:
        """The base model as a bi-encoder: the embedder given, when it is that model."""
        with self._lock:
            if not self._embedder_checked:
                own = SentenceTransformerEmbedder(self.config.base_model)
                if self._embedder is None or self._embedder.name != own.name:
                    self._embedder = own
                self._embedder_checked = True
            assert self._embedder is not None
            return self._embedder

    def logits(self, question: str, candidates: Sequence[tuple[str, str]]) -> np.ndarray:
        """One raw score per `(title, text)` candidate; higher means more likely an answer:
        the cross-encoder's logit plus `similarity_weight` times the bi-encoder's cosine, for
        the `SIMILARITY_TOP` best by logit (see `add_similarity`)."""
        scores = self.cross_logits(question, candidates)
        weight = self.config.similarity_weight
        if not weight or not len(candidates):
            return scores
        rows = top_rows(scores)
        cosine = self.similarities(question, [candidates[row] for row in rows])
        return add_similarity(scores, rows, cosine, weight)

    def similarities(self, question: str, candidates: Sequence[tuple[str, str]]) -> np.ndarray:
        """The bi-encoder's cosine of the question and each `(title, text)` candidate."""
        texts = [candidate_text(title, text) for title, text in candidates]
        vectors = self.bi_encoder.embed([question, *texts])  # unit rows
        return np.asarray(vectors[1:] @ vectors[0], dtype=np.float64)

    def cross_logits(self, question: str, candidates: Sequence[tuple[str, str]]) -> np.ndarray:
        """The cross-encoder's logit of each `(title, text)` candidate."""
        if not candidates:
            return np.zeros(0, dtype=np.float64)
        self.warm_up()
        seconds = [candidate_text(title, text) for title, text in candidates]
        order = np.argsort([-len(s) for s in seconds], kind="stable")
        result = np.empty(len(seconds), dtype=np.float64)
        batches = [order[i : i + self._batch_size] for i in range(0, len(order), self._batch_size)]
        if self._light is not None:
            for rows in batches:
                picked = [seconds[row] for row in rows]
                result[rows] = self._light.logits([question] * len(rows), picked)
            return result
        import torch

        with self._lock, torch.inference_mode():
            for rows in batches:
                encoded = self._tokenizer(
                    [question] * len(rows),
                    [seconds[row] for row in rows],
                    truncation="only_second",
                    max_length=self.config.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                output = self._model(**encoded).logits[:, 0]
                result[rows] = output.double().numpy()
        return result

    def confidence(self, logit: float, margin: float = 0.0) -> float:
        """P(right) of a best candidate with this logit (the judge's score when the model
        judges), `margin` above the runner-up."""
        return self.config.calibration(logit, margin)

    @property
    def judges(self) -> bool:
        """Whether the best candidates are read in context and judged (`judge`)."""
        return self.reader is not None and self.config.combiner is not None

    def judge(
        self, question: str, passages: Sequence[PassageText], ranked: Sequence[Scored]
    ) -> list[Reading]:
        """The best-ranked candidates read in their windows and judged, best first.

        Raises:
            ValueError: the model has no span reader or judge (one trained before them).
        """
        if self.reader is None or self.config.combiner is None:
            raise ValueError(
                f"the answer model in {self.directory} has no span reader and judge; "
                "rebuild it with `lede train answers`"
            )
        return read_top(
            self.reader, self.config.combiner, question, passages, ranked, self.reader.config.top
        )


def top_rows(logits: np.ndarray, top: int = SIMILARITY_TOP) -> np.ndarray:
    """The rows of the `top` best logits (the first of equals first)."""
    return np.argsort(-logits, kind="stable")[:top]


def add_similarity(
    logits: np.ndarray, rows: np.ndarray, cosine: np.ndarray, weight: float
) -> np.ndarray:
    """`logits` plus `weight` x the cosine of each of `rows`; a candidate not re-scored is
    credited the least cosine found, so the term never lifts it over one that was."""
    scores = logits + weight * float(cosine.min())
    scores[rows] = logits[rows] + weight * cosine
    return scores


def load_classifier(
    base_model: str, weights: Path | None, lora_scale: float = 0.0
) -> tuple[Any, Any]:
    """The base model as a one-logit BERT classifier with trained tensors laid over it (see
    `load_adapted`), and its tokenizer."""
    from transformers import AutoTokenizer

    model = load_adapted("classifier", base_model, weights, lora_scale)
    return model, AutoTokenizer.from_pretrained(resolve_model_path(base_model))


def load_adapted(head: str, base_model: str, weights: Path | None, lora_scale: float = 0.0) -> Any:
    """The base model with a `head` ("classifier": one logit; "question-answering": a start
    and an end logit per token), with trained tensors laid over it.

    A pair of low-rank adapters `<layer>.lora_a` (r x in) and `<layer>.lora_b` (out x r) is
    merged into `<layer>.weight` as `weight + lora_scale * lora_b @ lora_a`.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()  # the head is "newly initialized" until laid over
    path = resolve_model_path(base_model)
    torch.manual_seed(0)
    if head == "classifier":
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(path)
    if weights is not None:
        from safetensors.torch import load_file

        trained = load_file(str(weights))
        state = model.state_dict()
        for name in [n for n in trained if n.endswith(".lora_a")]:
            layer = name.removesuffix(".lora_a")
            down, up = trained.pop(name).float(), trained.pop(f"{layer}.lora_b").float()
            state[f"{layer}.weight"] = state[f"{layer}.weight"] + lora_scale * (up @ down)
        unknown = sorted(set(trained) - set(state))
        if unknown:
            raise ValueError(f"{weights} holds tensors the base model lacks: {unknown[:3]}")
        for name, tensor in trained.items():
            state[name] = tensor.to(state[name].dtype)
        model.load_state_dict(state)
        logger.info("answer model %s: %s with %d trained tensors", head, base_model, len(trained))
    model.eval()
    return model
