"""The embedding model's tokenizer on its own: what chunking needs, without loading the model.

Chunking counts tokens with the model's own tokenizer (DESIGN.md), and that is all it needs of
the model; loading the tokenizer alone takes a fraction of a second and no PyTorch weights, so
the chunk stage of ingest can run in a process (or on a machine) that never embeds.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DEFAULT_WINDOW = 512  # a model that declares no window: BERT's


class TokenCounter(Protocol):
    """What the chunker asks of a tokenizer."""

    @property
    def max_tokens(self) -> int:
        """Tokens of text the model reads at most (its window, less the special tokens)."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Each token's character span in `text`."""


class ModelTokenizer:
    """The Hugging Face tokenizer of a sentence-transformers model directory (or hub name).

    Loads on first use. Hugging Face fast tokenizers keep padding/truncation as mutable
    state: two threads tokenizing at once can corrupt each other's batch ("Unable to create
    tensor", seen under load), so calls take a lock.
    """

    def __init__(self, path: str):
        self._path = path
        self._tokenizer: Tokenizer | None = None
        self._window: int | None = None
        self._lock = threading.RLock()

    def _load(self) -> Tokenizer:
        with self._lock:
            if self._tokenizer is None:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                from tokenizers import Tokenizer

                folder = Path(self._path)
                if (folder / "tokenizer.json").is_file():
                    # The fast tokenizer's own file: no transformers (and so no PyTorch) import.
                    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
                    declared = _declared_max(folder)
                else:  # a hub name, or a model saved without tokenizer.json
                    from transformers import AutoTokenizer

                    wrapper = AutoTokenizer.from_pretrained(self._path)
                    tokenizer, declared = wrapper.backend_tokenizer, wrapper.model_max_length
                tokenizer.no_truncation()
                tokenizer.no_padding()
                self._window = _window(folder, declared)
                self._tokenizer = tokenizer
            return self._tokenizer

    @property
    def max_tokens(self) -> int:
        self._load()
        assert self._window is not None
        return self._window - 2  # [CLS] and [SEP]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        tokenizer = self._load()
        with self._lock:
            encoded = tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(item.ids) for item in encoded]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        tokenizer = self._load()
        with self._lock:
            encoded = tokenizer.encode(text, add_special_tokens=False)
        return [(int(s), int(e)) for s, e in encoded.offsets]


def _declared_max(model_dir: Path) -> int:
    """`model_max_length` from tokenizer_config.json (0 when it declares none)."""
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        length = json.loads(config.read_text()).get("model_max_length")
        if isinstance(length, int):
            return length
    return 0


def _window(model_dir: Path, tokenizer_max: int) -> int:
    """The model's window as sentence-transformers sets it: `max_seq_length` from
    sentence_bert_config.json, else the tokenizer's own limit (when it declares one)."""
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        length = json.loads(config.read_text()).get("max_seq_length")
        if isinstance(length, int):
            return length
    return tokenizer_max if 0 < tokenizer_max < 100_000 else DEFAULT_WINDOW
