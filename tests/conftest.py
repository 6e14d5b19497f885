"""Shared fixtures: sample articles, a fast fake embedder, the real model once per session."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The exported ONNX models go to a cache of this test session, not to the user's: the `lede`
# processes the tests start read it from their settings (LEDE_CACHE_DIR), and a process that
# uses the library with its defaults (the README's Python example) finds it as the user cache
# folder (XDG_CACHE_HOME/lede). It is removed when the session exits. `make test` names one
# instead (both variables), kept in .lede/ and filled beforehand by `tests/warm.py`.
if "LEDE_CACHE_DIR" not in os.environ:
    _session_cache = tempfile.TemporaryDirectory(prefix="lede-test-cache-")
    os.environ["XDG_CACHE_HOME"] = _session_cache.name
    os.environ["LEDE_CACHE_DIR"] = str(Path(_session_cache.name) / "lede")

from lede.indexer import runtime
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import Article, parse_article
from lede.service.settings import RuntimeSettings

# This process, like a `lede` command, runs models as its settings say (the cache above, and
# `make test` gives each of its two workers one thread: LEDE_MODEL_THREADS).
runtime.configure(RuntimeSettings().runtime())

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def sample_articles() -> list[Article]:
    lines = (EXAMPLES / "articles.jsonl").read_text().splitlines()
    return [parse_article(json.loads(line)) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def sample_questions() -> list[dict[str, str]]:
    lines = (EXAMPLES / "questions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def use_runtime() -> Iterator[Callable[..., runtime.ModelRuntime]]:
    """`use_runtime(backend=..., cache_dir=...)`: run models so for the rest of the test."""
    previous = runtime.current()

    def use(**changes: Any) -> runtime.ModelRuntime:
        chosen = dataclasses.replace(runtime.current(), **changes)
        runtime.configure(chosen)
        return chosen

    yield use
    runtime.configure(previous)


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder(dimension=64, max_tokens=64)


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    embedder = SentenceTransformerEmbedder()
    embedder.warm_up()
    return embedder


@pytest.fixture
def fake_index(tmp_path: Path, fake_embedder: HashingEmbedder) -> Iterator[LedeIndex]:
    index = LedeIndex.create(tmp_path / "index", embedder=fake_embedder)
    yield index
    index.close()


@pytest.fixture(scope="session")
def real_index(
    tmp_path_factory: pytest.TempPathFactory,
    real_embedder: SentenceTransformerEmbedder,
    sample_articles: list[Article],
) -> Iterator[LedeIndex]:
    """The sample articles indexed with the real model (built once, read-only in tests)."""
    path = tmp_path_factory.mktemp("real") / "index"
    index = LedeIndex.create(path, embedder=real_embedder)
    index.add(sample_articles)
    yield index
    index.close()


@pytest.fixture(scope="module")
def sample_index_dir(
    tmp_path_factory: pytest.TempPathFactory,
    real_embedder: SentenceTransformerEmbedder,
    sample_articles: list[Article],
) -> Path:
    """A fresh index of the sample articles (real model) for each test module that asks."""
    path = tmp_path_factory.mktemp("samples") / "index"
    with LedeIndex.create(path, embedder=real_embedder) as index:
        index.add(sample_articles)
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The heaviest modules run first, each kept whole and in order, so that `pytest -n 2
    --dist loadfile` (`make test`) hands them out early and ends with short modules on both
    workers: Ray modules, then by their number of slow tests, then of real-model tests."""

    def module(item: pytest.Item) -> str:
        return str(getattr(getattr(item, "module", None), "__name__", ""))

    weight: dict[str, list[int]] = {}
    for item in items:
        counts = weight.setdefault(module(item), [0, 0, 0])
        for slot, marker in enumerate(("ray", "slow", "model")):
            counts[slot] += item.get_closest_marker(marker) is not None
    heaviest = {name: (min(c[0], 1), c[1], c[2]) for name, c in weight.items()}
    items.sort(key=lambda item: tuple(-x for x in heaviest[module(item)]))
