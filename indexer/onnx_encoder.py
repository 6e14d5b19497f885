"""The transformer of a sentence-transformers model, exported to ONNX and run by ONNX Runtime.

For a short input such as a search query, ONNX Runtime runs all-MiniLM-L6-v2 about 2.5 times
faster than PyTorch on CPU (decision 22), with the same vectors to float precision. Only the
transformer runs in ONNX Runtime; pooling, normalization and any dense layers stay the model's own
sentence-transformers modules, so the output is the model's embedding by construction.

The exported graph is cached on disk, keyed by the model's name, revision and the torch and ONNX
versions, so only the first process to load a model pays for the export (about a second).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lede.indexer.vectors import unit_rows

logger = logging.getLogger(__name__)

OPSET = 17
# The cosine between this encoder's vectors and PyTorch's must be at least this on the probe
# texts, or the embedder keeps PyTorch (decision 22).
AGREEMENT = 0.9999
EXPORT_TEXT = "Where are the sample articles?"
PROBE_TEXTS = (
    "What does the evaluation measure?",
    "Lede indexes articles into passages and embeds each one with a sentence-transformers "
    "model, keeping a FAISS vector index beside a BM25 index.",
)


class OnnxUnavailable(RuntimeError):
    """The model cannot be run by ONNX Runtime (not a transformer, export or load failed)."""


def cache_dir() -> Path:
    """Where exported models live: `LEDE_CACHE_DIR`, else `$XDG_CACHE_HOME/lede`."""
    explicit = os.environ.get("LEDE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lede"


def _open_session(source: str | bytes, options: Any) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise OnnxUnavailable(f"ONNX Runtime cannot load the model: {error}") from error


class OnnxTransformer:
    """Runs the first module (a `Transformer`) of a loaded SentenceTransformer in ONNX Runtime."""

    def __init__(self, model: Any, *, name: str, revision: str) -> None:
        import onnxruntime
        import torch

        first = model[0]
        if not hasattr(first, "auto_model") or not hasattr(model, "tokenizer"):
            raise OnnxUnavailable(f"{type(first).__name__} is not a Hugging Face transformer")
        self._model = model
        self._input_names = [
            name for name in model.tokenizer.model_input_names if name != "modality"
        ]
        key = hashlib.sha256(
            f"{name}|{revision}|{torch.__version__}|{onnxruntime.__version__}|{OPSET}".encode()
        ).hexdigest()[:20]
        path = cache_dir() / "onnx" / f"{key}.onnx"
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: spinning took a core from the FAISS
        # and BM25 work that follows each query encoding (decision 22).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if path.is_file():
            try:
                self._session = _open_session(str(path), options)
            except OnnxUnavailable as error:  # a damaged cache file: export again
                logger.warning("cached ONNX model %s unreadable (%s); exporting again", path, error)
                self._session = _open_session(self._export(path), options)
        else:
            self._session = _open_session(self._export(path), options)

    def _export(self, path: Path) -> bytes:
        """Export the transformer; store it in the cache when the cache is writable."""
        import torch

        first = self._model[0]
        names = self._input_names
        # Traced on one unpadded text; `agreement` then checks a padded batch of other lengths.
        features = self._model.preprocess([EXPORT_TEXT])

        class LastHiddenState(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                output = self.inner(**dict(zip(names, inputs, strict=True)), return_dict=True)
                return output.last_hidden_state  # type: ignore[no-any-return]

        axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]}
        try:
            with (
                tempfile.TemporaryDirectory() as scratch,
                torch.inference_mode(),
                warnings.catch_warnings(),
            ):
                target = Path(scratch) / "model.onnx"
                warnings.simplefilter("ignore")  # tracer notes on shapes; outputs are checked
                torch.onnx.export(
                    LastHiddenState(first.auto_model).eval(),
                    tuple(features[name] for name in names),
                    target,
                    input_names=names,
                    output_names=["token_embeddings"],
                    dynamic_axes=axes,
                    opset_version=OPSET,
                    dynamo=False,
                )
                data = target.read_bytes()
        except Exception as error:
            raise OnnxUnavailable(f"ONNX export failed: {error}") from error
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
                f.write(data)
            os.replace(f.name, path)
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
