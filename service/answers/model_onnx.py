"""The answer model run without PyTorch: its merged classifier exported to ONNX.

The cross-encoder of `answers/model.py` is the embedding model's weights with trained adapters
merged in; exported once (by a child process, `python -m lede.service.answers.model_onnx
DIRECTORY`), it runs in ONNX Runtime with the model's own `tokenizer.json`, so `/answer` needs
no PyTorch in the serving process (decision 44). Like the light embedding encoder, it opens only
a graph whose sidecar holds PyTorch's logits of probe pairs, and checks that it reproduces them
first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Self

import numpy as np

from lede.indexer.encoders.embedder import model_fingerprint, resolve_model_path
from lede.indexer.encoders.light_encoder import feeds, load_tokenizer, open_table
from lede.indexer.encoders.onnx_cache import (
    OnnxUnavailable,
    graph_path,
    open_session,
    read_sidecar,
)
from lede.indexer.encoders.onnx_export import export_graph, write_light_export
from lede.indexer.runtime import configure_child

logger = logging.getLogger(__name__)

SIDECAR_KIND = "answer-classifier"
READER_KIND = "answer-reader"
# Largest difference from PyTorch's logits allowed on the probe pairs (logits span about -10..10;
# float32 kernels differ by about 1e-5).
TOLERANCE = 1e-3
PROBE_PAIRS = (
    ("Who plays Ethan Hunt?", "Mission: Impossible | Tom Cruise returns as Ethan Hunt."),
    ("When does the ferry leave?", "The ferry to Lantern Island leaves at 7 a.m. every day."),
    ("How many people live there?", "Harbor City | " + "The city grew quickly. " * 40),
)
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


def answer_graph(
    base_model: str,
    weights: Path,
    lora_scale: float,
    max_length: int,
    kind: str = SIDECAR_KIND,
) -> Path:
    """The cache file of the classifier (or, with `kind` READER_KIND, the span reader) merged
    from `weights` over `base_model` at `lora_scale`, reading `max_length` tokens: keyed by
    what the graph and its reference outputs depend on, so that writing the model's other
    settings (the judge's, the threshold) does not export it again."""
    base = Path(resolve_model_path(base_model))
    parts = (
        kind,
        base_model,
        model_fingerprint(base) if base.is_dir() else "hub",
        hashlib.sha256(weights.read_bytes()).hexdigest(),
        json.dumps({"lora_scale": lora_scale, "max_length": max_length}, sort_keys=True),
    )
    return graph_path(*parts)


class LightClassifier:
    """One logit per (question, candidate text) pair, from the cached graph (or, for a reader
    graph, a start and an end logit per token: `outputs`)."""

    kind = SIDECAR_KIND

    def __init__(self, graph: Path, sidecar: dict[str, Any], model_dir: Path) -> None:
        self._session = open_session(str(graph))
        self._names = [input.name for input in self._session.get_inputs()]
        self._table = open_table(graph, sidecar)
        self._tokenizer = load_tokenizer(
            model_dir, max_length=int(sidecar["max_length"]), pairs="only_second"
        )
        self._lock = threading.Lock()

    @classmethod
    def open(cls, graph: Path, model_dir: Path) -> Self | None:
        """The model of an exported graph once it reproduces PyTorch's probe outputs."""
        sidecar = read_sidecar(graph, cls.kind)
        if sidecar is None:
            return None
        try:
            runner = cls(graph, sidecar, model_dir)
            pairs = [(str(q), str(c)) for q, c in sidecar["probe_pairs"]]
            ours = runner.probe([q for q, _ in pairs], [c for _, c in pairs])
            difference = float(np.abs(ours - np.asarray(sidecar["reference"])).max())
        except (OnnxUnavailable, KeyError, ValueError, TypeError) as error:
            logger.warning("light %s unavailable for %s: %s", cls.kind, graph, error)
            return None
        if difference > TOLERANCE:
            logger.warning(
                "light %s: logits differ from PyTorch's by %.2g > %s",
                cls.kind,
                difference,
                TOLERANCE,
            )
            return None
        return runner

    def outputs(
        self, questions: Sequence[str], seconds: Sequence[str]
    ) -> tuple[np.ndarray, list[Any]]:
        """The graph's output for a batch of pairs, and the pairs' encodings."""
        with self._lock:  # the tokenizer's padding state is shared
            encodings = self._tokenizer.encode_batch(list(zip(questions, seconds, strict=True)))
        (output,) = self._session.run(None, feeds(encodings, self._names, self._table))
        return np.asarray(output, dtype=np.float64), encodings

    def logits(self, questions: Sequence[str], seconds: Sequence[str]) -> np.ndarray:
        return self.outputs(questions, seconds)[0][:, 0]

    def probe(self, questions: Sequence[str], seconds: Sequence[str]) -> np.ndarray:
        """What the sidecar's reference holds for the probe pairs."""
        return self.logits(questions, seconds)


class LightReader(LightClassifier):
    """The span reader's graph: a start and an end logit per token (batch x tokens x 2)."""

    kind = READER_KIND

    def probe(self, questions: Sequence[str], seconds: Sequence[str]) -> np.ndarray:
        return self.outputs(questions, seconds)[0]


def export(directory: Path) -> bool:
    """Merge the classifier of the answer model in `directory`, export it to the cache with a
    sidecar of PyTorch's logits on the probe pairs; False when the cache is not writable."""
    import torch

    from lede.service.answers.model import WEIGHTS, AnswerModel, load_classifier

    answers = AnswerModel(directory)
    config, graph = answers.config, answers.graph
    model, tokenizer = load_classifier(config.base_model, directory / WEIGHTS, config.lora_scale)

    def encode(pairs: Sequence[tuple[str, str]]) -> Any:
        return tokenizer(
            [q for q, _ in pairs],
            [c for _, c in pairs],
            truncation="only_second",
            max_length=config.max_length,
            padding=True,
            return_tensors="pt",
        )

    graph_bytes, table = export_graph(
        model, "logits", encode(PROBE_PAIRS[:1]), INPUT_NAMES, light=True
    )
    assert table is not None
    with torch.inference_mode():
        reference = model(**encode(PROBE_PAIRS)).logits[:, 0].double().numpy()
    sidecar = {
        "kind": SIDECAR_KIND,
        "max_length": config.max_length,
        "probe_pairs": [list(pair) for pair in PROBE_PAIRS],
        "reference": reference.tolist(),
    }
    return write_light_export(graph, graph_bytes, table, sidecar)


def export_reader(directory: Path) -> bool:
    """Merge the span reader of the answer model in `directory` and export it like `export`:
    its output is a start and an end logit per token (batch x tokens x 2)."""
    import torch

    from lede.service.answers.model import ScorerConfig, load_adapted
    from lede.service.answers.reader import Reader, torch_inputs

    config = ScorerConfig.read(directory)
    if config.reader is None:
        raise ValueError(f"{directory} has no reader in its scorer.json")
    reader = Reader(directory, config.base_model, config.reader)
    weights = reader.weights
    model = load_adapted("question-answering", config.base_model, weights, config.reader.lora_scale)
    base = Path(resolve_model_path(config.base_model))
    tokenizer = load_tokenizer(base, max_length=config.reader.max_length, pairs="only_second")

    class Spans(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def get_input_embeddings(self) -> Any:
            return self.inner.get_input_embeddings()

        def forward(self, return_dict: bool = True, **inputs: Any) -> Any:
            output = self.inner(**inputs)
            logits = torch.stack([output.start_logits, output.end_logits], dim=-1)
            return SimpleNamespace(span_logits=logits)

    def encode(pairs: Sequence[tuple[str, str]]) -> Any:
        return torch_inputs(tokenizer.encode_batch(list(pairs)))

    wrapped = Spans().eval()
    graph_bytes, table = export_graph(
        wrapped, "span_logits", encode(PROBE_PAIRS[:1]), INPUT_NAMES, light=True, per_token=True
    )
    assert table is not None
    with torch.inference_mode():
        reference = wrapped(**encode(PROBE_PAIRS)).span_logits.double().numpy()
    sidecar = {
        "kind": READER_KIND,
        "max_length": config.reader.max_length,
        "probe_pairs": [list(pair) for pair in PROBE_PAIRS],
        "reference": reference.tolist(),
    }
    return write_light_export(reader.graph, graph_bytes, table, sidecar)


def main(argv: list[str]) -> int:
    """`python -m lede.service.answers.model_onnx [--cache-dir DIR] DIRECTORY [reader]`: 0 when the
    graph (the sentence scorer's, or with `reader` the span reader's) is in the cache."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = configure_child(argv)
    if len(argv) not in (1, 2) or argv[1:] not in ([], ["reader"]):
        print("usage: python -m lede.service.answers.model_onnx ANSWER_MODEL_DIRECTORY [reader]")
        return 2
    try:
        exported = export_reader(Path(argv[0])) if argv[1:] else export(Path(argv[0]))
        return 0 if exported else 3
    except (OnnxUnavailable, RuntimeError, ValueError) as error:
        print(f"answer model export failed: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
