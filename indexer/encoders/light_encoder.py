"""A sentence-transformers embedding model run without PyTorch: ONNX Runtime, the tokenizer and
numpy pooling.

A process that only encodes queries (an API replica, `lede serve`) needs neither PyTorch nor
sentence-transformers: the transformer's exported graph (`onnx_encoder`), the model's own
`tokenizer.json` and its pooling (mean, CLS or max, then normalization) are all of it. Importing
PyTorch alone costs a serving process several hundred MB (decision 44).

The encoder opens only a graph whose sidecar the exporter wrote, and checks itself against the
PyTorch embeddings of the probe texts stored there before it is used; a model it cannot run, or
a check it fails, leaves the embedder on its PyTorch paths.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lede.indexer.encoders.onnx_cache import OnnxUnavailable, graph_path, open_session, read_sidecar
from lede.indexer.vectors import unit_rows

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

SIDECAR_KIND = "sentence-embedding"  # what onnx_encoder.export_for_light writes


def load_tokenizer(model_dir: Path, *, max_length: int, pairs: str | None = None) -> Tokenizer:
    """The model's fast tokenizer from its `tokenizer.json`, truncating to `max_length` (the
    second text of a pair only, when `pairs="only_second"`) and padding to the longest."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer

    file = model_dir / "tokenizer.json"
    if not file.is_file():
        raise OnnxUnavailable(f"{model_dir} has no tokenizer.json")
    tokenizer = Tokenizer.from_file(str(file))
    tokenizer.enable_truncation(max_length, strategy=pairs or "longest_first")
    pad = tokenizer.padding or {}
    pad_token = str(pad.get("pad_token", "[PAD]"))
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise OnnxUnavailable(f"{file} has no padding token {pad_token!r}")
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tokenizer


def light_graph_path(name: str, revision: str) -> Path:
    """The cache file of a model's light graph (token embeddings in, see `onnx_export`)."""
    return graph_path(name, revision, "light")


def open_table(graph: Path, sidecar: dict[str, Any]) -> TokenTable:
    """The word-embedding table a light graph reads its input from (see `TokenTable`)."""
    return token_table(graph.parent / str(sidecar["embeddings"]))


@functools.cache
def token_table(path: Path) -> TokenTable:
    """One `TokenTable` per file and process: the embedding and the answer model share it."""
    return TokenTable(path)


class TokenTable:
    """A `.npy` table of token embeddings (float32, tokens x dim) read a row at a time.

    Rows are copied out of the file with `pread`, never mapped: a memory map kept whatever the
    kernel mapped around each looked-up row resident, and with the page cache's large folios
    that was 20 MB after one query and 32-40 MB after a few answers, counted in the process's
    RSS, for rows a query needs a few hundred of (1.5 KB each). Reading them costs about a
    microsecond a row (decision 46)."""

    def __init__(self, path: Path) -> None:
        try:
            with path.open("rb") as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
                offset = handle.tell()
            size = path.stat().st_size
        except (OSError, ValueError) as error:
            raise OnnxUnavailable(f"embedding table {path} unreadable: {error}") from error
        if len(shape) != 2 or dtype != np.float32 or fortran:
            raise OnnxUnavailable(f"embedding table {path} is {dtype} of shape {shape}")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self._row_bytes = self.shape[1] * 4
        if size < offset + self.shape[0] * self._row_bytes:
            raise OnnxUnavailable(f"embedding table {path} is truncated")
        self._offset = offset
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The embeddings of token ids of any shape: that shape plus the embedding dimension."""
        unique, inverse = np.unique(ids, return_inverse=True)
        if unique.size and not 0 <= int(unique[0]) <= int(unique[-1]) < self.shape[0]:
            raise ValueError(f"token ids outside the table's {self.shape[0]} rows")
        found = np.empty((unique.size, self.shape[1]), dtype=np.float32)
        offsets = (unique * self._row_bytes + self._offset).tolist()
        for row, offset in zip(found, offsets, strict=True):
            if os.preadv(self._fd, [row.data], offset) != self._row_bytes:
                raise OnnxUnavailable("embedding table shorter than its header says")
        return found[inverse.reshape(ids.shape)]


def feeds(encodings: list[Any], names: list[str], table: TokenTable) -> dict[str, np.ndarray]:
    """The graph's inputs from a batch of padded encodings: token embeddings looked up in
    `table`, and the int64 mask and token types."""
    ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
    columns = {
        "inputs_embeds": lambda: table.rows(ids),
        "attention_mask": lambda: np.asarray([e.attention_mask for e in encodings], np.int64),
        "token_type_ids": lambda: np.asarray([e.type_ids for e in encodings], np.int64),
    }
    missing = [name for name in names if name not in columns]
    if missing:
        raise OnnxUnavailable(f"the graph wants inputs the tokenizer does not give: {missing}")
    return {name: columns[name]() for name in names}


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' pooling of token embeddings (batch x tokens x dim)."""
    if mode == "cls":
        return np.asarray(hidden[:, 0], dtype=np.float32)
    weights = mask[:, :, None].astype(np.float32)
    if mode == "max":
        return np.asarray(np.where(weights > 0, hidden, -1e9).max(axis=1), dtype=np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    return np.asarray(summed / counts, dtype=np.float32)


class LightEncoder:
    """Sentence embeddings from a cached graph, without PyTorch; see the module docstring."""

    def __init__(self, graph: Path, sidecar: dict[str, Any], model_dir: Path) -> None:
        self._session = open_session(str(graph))
        self._names = [input.name for input in self._session.get_inputs()]
        self._table = open_table(graph, sidecar)
        self._pooling = str(sidecar["pooling"])
        self._normalize = bool(sidecar["normalize"])
        self.dimension = int(sidecar["dimension"])
        self._tokenizer = load_tokenizer(model_dir, max_length=int(sidecar["max_length"]))
        self._lock = threading.Lock()

    @classmethod
    def open(cls, graph: Path, model_dir: Path, *, agreement: float) -> LightEncoder | None:
        """The encoder of a graph exported with its sidecar, once it reproduces the sidecar's
        PyTorch embeddings to `agreement` (cosine); else None, saying why in the log."""
        sidecar = read_sidecar(graph, SIDECAR_KIND)
        if sidecar is None:
            return None
        try:
            encoder = cls(graph, sidecar, model_dir)
            ours = encoder.encode(list(sidecar["probe_texts"]))
        except (OnnxUnavailable, KeyError, ValueError) as error:
            logger.warning("light encoder unavailable for %s: %s", graph, error)
            return None
        theirs = np.asarray(sidecar["reference"], dtype=np.float32)
        if ours.shape != theirs.shape:
            logger.warning("light encoder: %s gives vectors of shape %s", graph, ours.shape)
            return None
        cosine = float((unit_rows(ours) * unit_rows(theirs)).sum(axis=1).min())
        if cosine < agreement:
            logger.warning(
                "light encoder: vectors differ from PyTorch's (cosine %.6f < %s)", cosine, agreement
            )
            return None
        return encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        """Sentence embeddings, one row per text (normalized when the model normalizes)."""
        with self._lock:  # the tokenizer's padding state is shared (see tokenizer.ModelTokenizer)
            encodings = self._tokenizer.encode_batch(texts)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(None, feeds(encodings, self._names, self._table))
        vectors = pool(np.asarray(hidden, dtype=np.float32), mask, self._pooling)
        return unit_rows(vectors) if self._normalize else vectors
