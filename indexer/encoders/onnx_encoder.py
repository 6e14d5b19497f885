"""The transformer of a sentence-transformers model, exported to ONNX and run by ONNX Runtime.

For a short input such as a search query, ONNX Runtime runs all-MiniLM-L6-v2 about 2.5 times
faster than PyTorch on CPU (decision 22), with the same vectors to float precision.

`OnnxTransformer` runs only the transformer in ONNX Runtime and the model's other modules in
PyTorch, so its output is the model's embedding by construction; it is the fallback for a model
the light encoder cannot run (`light_encoder`), and the exporter. Run as a module (`python -m
lede.indexer.encoders.onnx_encoder MODEL_PATH NAME REVISION`), it exports a model's graph into
the cache with the sidecar the light encoder reads (decision 44), and exits 0 when that
sidecar was written.

The exported graph is cached on disk (`onnx_cache`), keyed by the model's name, revision and the
torch and ONNX versions, so only the first process to load a model pays for the export (about a
second).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lede.indexer.encoders.light_encoder import SIDECAR_KIND, light_graph_path
from lede.indexer.encoders.onnx_cache import (
    OnnxUnavailable,
    graph_path,
    open_session,
    write_atomic,
)
from lede.indexer.encoders.onnx_export import export_graph, write_light_export
from lede.indexer.runtime import configure_child
from lede.indexer.vectors import unit_rows

logger = logging.getLogger(__name__)

# The cosine between this encoder's vectors and PyTorch's must be at least this on the probe
# texts, or the embedder keeps PyTorch (decision 22).
AGREEMENT = 0.9999
EXPORT_TEXT = "Where are the sample articles?"
PROBE_TEXTS = (
    "What does the evaluation measure?",
    "Lede indexes articles into passages and embeds each one with a sentence-transformers "
    "model, keeping a FAISS vector index beside a BM25 index.",
)
LIGHT_POOLING = ("mean", "cls", "max")

__all__ = ["AGREEMENT", "OnnxTransformer", "OnnxUnavailable", "agreement"]


class OnnxTransformer:
    """Runs the first module (a `Transformer`) of a loaded SentenceTransformer in ONNX Runtime."""

    def __init__(self, model: Any, *, name: str, revision: str) -> None:
        first = model[0]
        if not hasattr(first, "auto_model") or not hasattr(model, "tokenizer"):
            raise OnnxUnavailable(f"{type(first).__name__} is not a Hugging Face transformer")
        self._model = model
        self._input_names = [
            name for name in model.tokenizer.model_input_names if name != "modality"
        ]
        self.path = graph_path(name, revision)
        if self.path.is_file():
            try:
                self._session = open_session(str(self.path))
            except OnnxUnavailable as error:  # a damaged cache file: export again
                logger.warning(
                    "cached ONNX model %s unreadable (%s); exporting again", self.path, error
                )
                self._session = open_session(self._export(self.path))
        else:
            self._session = open_session(self._export(self.path))

    def _export(self, path: Path) -> bytes:
        """Export the transformer; store it in the cache when the cache is writable."""
        # Traced on one unpadded text; `agreement` then checks a padded batch of other lengths.
        features = self._model.preprocess([EXPORT_TEXT])
        data, _ = export_graph(
            self._model[0].auto_model,
            "last_hidden_state",
            features,
            self._input_names,
            light=False,
        )
        try:
            write_atomic(path, data)
            logger.info("exported the embedding model to %s", path)
        except OSError as error:
            logger.info("ONNX cache %s not writable (%s); keeping the model in memory", path, error)
        return data

    def encode(self, texts: list[str]) -> np.ndarray:
        """Sentence embeddings (not normalized unless the model normalizes), one row per text.

        The transformer runs in ONNX Runtime, the model's other modules in PyTorch."""
        import torch

        features = self._model.preprocess(texts)
        feeds = {name: np.ascontiguousarray(features[name].numpy()) for name in self._input_names}
        (hidden,) = self._session.run(None, feeds)
        features["token_embeddings"] = torch.from_numpy(hidden)
        with torch.inference_mode():
            for module in list(self._model)[1:]:
                features = module(features)
        return np.asarray(features["sentence_embedding"].float().numpy(), dtype=np.float32)


def agreement(onnx: OnnxTransformer, model: Any) -> float:
    """Lowest cosine between ONNX Runtime's and PyTorch's embeddings of the probe texts."""
    ours = onnx.encode(list(PROBE_TEXTS))
    theirs = model.encode(list(PROBE_TEXTS), convert_to_numpy=True, show_progress_bar=False)
    return float((unit_rows(ours) * unit_rows(theirs)).sum(axis=1).min())


def light_recipe(model: Any) -> dict[str, Any] | None:
    """How to turn the transformer's token embeddings into the model's sentence embedding
    without PyTorch, or None when the model has modules the light encoder does not run (a Dense
    layer, a pooling mode other than mean, CLS or max, lower-casing done outside the tokenizer).
    """
    modules = list(model)
    kinds = [type(module).__name__ for module in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        return None
    first, pooling = modules[0], modules[1]
    if getattr(first, "do_lower_case", False) or pooling.pooling_mode not in LIGHT_POOLING:
        return None
    names = [name for name in model.tokenizer.model_input_names if name != "modality"]
    return {
        "input_names": names,
        "max_length": int(model.max_seq_length),
        "pooling": str(pooling.pooling_mode),
        "normalize": kinds[2:] == ["Normalize"],
        "dimension": int(model.get_embedding_dimension()),
    }


def export_for_light(path: str, name: str, revision: str) -> bool:
    """Export the model at `path` into the cache for the light encoder: the graph (token
    embeddings in), the word-embedding table, and the sidecar with the recipe and PyTorch's
    embeddings of the probe texts to check the light encoder against."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")
    recipe = light_recipe(model)
    if recipe is None:
        logger.info("%s has modules the light encoder does not run", name)
        return False
    features = model.preprocess([EXPORT_TEXT])
    graph, table = export_graph(
        model[0].auto_model, "last_hidden_state", features, recipe["input_names"], light=True
    )
    assert table is not None
    reference = model.encode(list(PROBE_TEXTS), convert_to_numpy=True, show_progress_bar=False)
    sidecar = {
        "kind": SIDECAR_KIND,
        "model": name,
        "revision": revision,
        **recipe,
        "probe_texts": list(PROBE_TEXTS),
        "reference": np.asarray(reference, dtype=np.float64).tolist(),
    }
    return write_light_export(light_graph_path(name, revision), graph, table, sidecar)


def main(argv: list[str]) -> int:
    """`python -m lede.indexer.encoders.onnx_encoder [--cache-dir DIR] MODEL_PATH NAME REVISION`:
    0 when the graph and its light sidecar are in the cache, 3 when the model cannot be run light
    (see `light_recipe`)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = configure_child(argv)
    if len(argv) != 3:
        print("usage: python -m lede.indexer.encoders.onnx_encoder MODEL_PATH NAME REVISION")
        return 2
    try:
        return 0 if export_for_light(*argv) else 3
    except OnnxUnavailable as error:
        print(f"ONNX export failed: {error}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
