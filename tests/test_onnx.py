"""The ONNX Runtime backend of the real embedding model: same vectors as PyTorch, cached export."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import lede.indexer.embedder
from lede.indexer.embedder import SentenceTransformerEmbedder
from lede.indexer.models import Article


def passages(articles: list[Article]) -> list[str]:
    """Texts of many lengths: short titles, sentences, whole articles (truncated by the model)."""
    texts = [article.title for article in articles]
    texts += [article.text[:80] for article in articles]
    texts += [article.text for article in articles]
    return texts


def test_default_backend_is_onnx_and_matches_pytorch(
    real_embedder: SentenceTransformerEmbedder, sample_articles: list[Article]
) -> None:
    assert real_embedder.backend == "onnx"
    torch_embedder = SentenceTransformerEmbedder(backend="torch")
    assert torch_embedder.backend == "torch"
    texts = passages(sample_articles)
    ours = real_embedder.embed(texts)
    theirs = torch_embedder.embed(texts)
    assert ours.shape == theirs.shape == (len(texts), 384)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    assert float((ours * theirs).sum(axis=1).min()) > 0.9999
    # One text at a time (the query path) gives the same vectors as a padded batch.
    singles = np.vstack([real_embedder.embed([text]) for text in texts[:5]])
    np.testing.assert_allclose(singles, ours[:5], atol=1e-5)


def test_export_is_cached_and_a_damaged_cache_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LEDE_CACHE_DIR", str(tmp_path))
    first = SentenceTransformerEmbedder()
    assert first.backend == "onnx"
    (cached,) = (tmp_path / "onnx").glob("*.onnx")
    written = cached.stat().st_mtime_ns
    expected = first.embed(["a cached export"])

    second = SentenceTransformerEmbedder()
    assert second.backend == "onnx"
    assert cached.stat().st_mtime_ns == written  # read, not exported again
    np.testing.assert_allclose(second.embed(["a cached export"]), expected, atol=1e-6)

    cached.write_bytes(b"not an onnx model")
    with caplog.at_level(logging.WARNING, logger="lede.indexer.onnx_encoder"):
        third = SentenceTransformerEmbedder()
        assert third.backend == "onnx"
    assert "unreadable" in caplog.text
    np.testing.assert_allclose(third.embed(["a cached export"]), expected, atol=1e-6)
    assert cached.stat().st_size > 1_000_000  # the damaged file was replaced


def test_unwritable_cache_keeps_the_export_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("LEDE_CACHE_DIR", str(blocker))
    embedder = SentenceTransformerEmbedder()
    assert embedder.backend == "onnx"
    assert embedder.embed(["still works"]).shape == (1, 384)


def test_falls_back_to_pytorch_when_outputs_disagree(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lede.indexer.embedder, "AGREEMENT", 1.5)  # no cosine can reach it
    with caplog.at_level(logging.WARNING, logger="lede.indexer.embedder"):
        embedder = SentenceTransformerEmbedder()
        assert embedder.backend == "torch"
    assert "differ from PyTorch" in caplog.text
    assert embedder.embed(["falls back"]).shape == (1, 384)


def test_backend_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDE_EMBED_BACKEND", "torch")
    assert SentenceTransformerEmbedder().backend == "torch"
    monkeypatch.setenv("LEDE_EMBED_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="LEDE_EMBED_BACKEND must be one of onnx, torch"):
        SentenceTransformerEmbedder()
