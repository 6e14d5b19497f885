"""A model-free embedder (feature hashing of words) for fast tests and large benchmarks.

Words are `\\w+` runs and single punctuation marks, each one "token". Vectors are signed
hashed bags of lowercase words, L2-normalized. Similar wording gives similar vectors, which
is enough to exercise the whole pipeline without loading a neural model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from lede.indexer.vectors import unit_rows

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class HashingEmbedder:
    """Deterministic bag-of-words embedder implementing the `Embedder` protocol."""

    def __init__(self, dimension: int = 64, max_tokens: int = 64):
        self._dimension = dimension
        self._max_tokens = max_tokens

    @property
    def name(self) -> str:
        return f"lede/hashing-{self._dimension}"

    @property
    def revision(self) -> str:
        return "1"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN.findall(text)) for text in texts]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in _TOKEN.finditer(text)]

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _TOKEN.findall(text.lower()):
                digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8)
                value = int.from_bytes(digest.digest(), "little")
                vectors[row, value % self._dimension] += 1.0 if value >> 63 else -1.0
        return unit_rows(vectors)
