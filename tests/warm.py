"""Compile and export once, before the tests: `python -m tests.warm` (`make test` runs it beside
lint and the browser's install, when one core is otherwise idle).

What it leaves behind is what the first test to need it would otherwise make while the other
test worker waits or competes for the CPU: numba's on-disk cache of the BM25 loop, and the
ONNX exports of the embedding model and of the shipped answer model in the
test session's model cache (`LEDE_CACHE_DIR`, which `make test` sets). Nothing a test asserts
depends on it: every test also passes on a machine where this never ran.
"""

from __future__ import annotations

import time

from lede.indexer import runtime
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.views import bm25_kernels
from lede.service.answers.model import AnswerModel
from lede.service.settings import RuntimeSettings


def main() -> None:
    runtime.configure(RuntimeSettings().runtime())
    steps = {
        "BM25 loop": bm25_kernels.warm_up,
        "embedding model": lambda: SentenceTransformerEmbedder().warm_up(),
        "answer model": lambda: AnswerModel().warm_up(),
    }
    for name, step in steps.items():
        started = time.perf_counter()
        step()
        print(f"warm: {name} in {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
