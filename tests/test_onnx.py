"""The ONNX Runtime backend of the real models: same vectors and logits as PyTorch, cached
exports, and a server that never loads PyTorch."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import lede.indexer.encoders.embedder
import lede.service.answers.model
import lede.service.answers.reader
from lede.eval.bench.memory import exercise, process_memory
from lede.eval.local_server import lede_serve
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.encoders.light_encoder import TokenTable
from lede.indexer.encoders.onnx_cache import OnnxUnavailable, export_in_child, sidecar_path
from lede.indexer.encoders.onnx_export import export_graph
from lede.indexer.models import Article
from lede.indexer.runtime import ModelRuntime
from lede.service import cli
from lede.service.answers.model import AnswerModel
from lede.service.answers.model_onnx import READER_KIND, SIDECAR_KIND
from lede.service.settings import RuntimeSettings

UseRuntime = Callable[..., ModelRuntime]

pytestmark = pytest.mark.model


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
    tmp_path: Path, use_runtime: UseRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    use_runtime(cache_dir=tmp_path)
    first = SentenceTransformerEmbedder()
    assert first.backend == "onnx" and first.light
    (graph,) = (tmp_path / "onnx").glob("*.onnx")
    assert graph.with_suffix(".onnx.data").stat().st_size > 20_000_000  # the weights beside it
    assert graph.with_suffix(".json").is_file()
    assert len(list((tmp_path / "onnx").glob("embeddings-*.npy"))) == 1
    assert "IsNaN" not in operators(graph)  # attention traced in its plain form (decision 57)
    written = graph.stat().st_mtime_ns
    expected = first.embed(["a cached export"])

    second = SentenceTransformerEmbedder()
    assert second.light
    assert graph.stat().st_mtime_ns == written  # read, not exported again
    np.testing.assert_allclose(second.embed(["a cached export"]), expected, atol=1e-6)

    graph.write_bytes(b"not an onnx model")
    with caplog.at_level(logging.WARNING, logger="lede.indexer.encoders.light_encoder"):
        third = SentenceTransformerEmbedder()
        assert third.light
    assert "light encoder unavailable" in caplog.text
    np.testing.assert_allclose(third.embed(["a cached export"]), expected, atol=1e-6)
    assert graph.stat().st_size > 10_000  # the damaged file was replaced


def operators(graph: Path | bytes) -> set[str]:
    import onnx

    model = (
        onnx.load_from_string(graph)
        if isinstance(graph, bytes)
        else onnx.load(graph, load_external_data=False)
    )
    return {node.op_type for node in model.graph.node}


def test_export_traces_eager_attention_and_gives_the_model_back_as_it_was() -> None:
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = BertModel(config).eval()
    model.set_attn_implementation("sdpa")  # transformers' default, what a loaded model runs
    features = {"input_ids": torch.tensor([[1, 5, 7, 2]]), "attention_mask": torch.ones(1, 4)}
    names = ["input_ids", "attention_mask"]
    graph, _ = export_graph(model, "last_hidden_state", features, names, light=False)
    # PyTorch's fused attention traces a NaN guard over every attention matrix; eager does not
    assert "IsNaN" not in operators(graph) and "Softmax" in operators(graph)
    assert model.config._attn_implementation == "sdpa"


def test_unwritable_cache_keeps_the_export_in_memory(
    tmp_path: Path, use_runtime: UseRuntime
) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    use_runtime(cache_dir=blocker)
    embedder = SentenceTransformerEmbedder()
    assert embedder.backend == "onnx"
    assert not embedder.light  # the light encoder needs its files; PyTorch pools
    assert embedder.embed(["still works"]).shape == (1, 384)


def test_falls_back_to_pytorch_when_outputs_disagree(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lede.indexer.encoders.embedder, "AGREEMENT", 1.5)  # no cosine can reach it
    with caplog.at_level(logging.WARNING, logger="lede.indexer.encoders.embedder"):
        embedder = SentenceTransformerEmbedder()
        assert embedder.backend == "torch"
    assert "differ from PyTorch" in caplog.text
    assert embedder.embed(["falls back"]).shape == (1, 384)


def test_the_backend_is_a_setting_that_the_entry_point_passes_on(
    monkeypatch: pytest.MonkeyPatch, use_runtime: UseRuntime
) -> None:
    """`LEDE_EMBED_BACKEND` is read by the settings, not by the library: an embedder follows
    the runtime its process was given."""
    monkeypatch.setenv("LEDE_EMBED_BACKEND", "torch")
    assert SentenceTransformerEmbedder().backend == "onnx"  # the library reads no variable
    use_runtime(backend=RuntimeSettings().runtime().backend)
    assert SentenceTransformerEmbedder().backend == "torch"
    monkeypatch.setenv("LEDE_EMBED_BACKEND", "tensorflow")
    with pytest.raises(ValidationError, match="embed_backend"):
        RuntimeSettings()
    with pytest.raises(ValueError, match="backend must be one of onnx, torch"):
        ModelRuntime("tensorflow")  # type: ignore[arg-type]
    result = CliRunner().invoke(cli.app, ["info", "--index", "missing"])
    assert result.exit_code == 2
    assert "invalid setting: LEDE_EMBED_BACKEND" in result.stderr


def test_light_models_serve_without_pytorch(sample_index_dir: Path) -> None:
    """A real `lede serve` answers searches and questions without ever loading PyTorch, nor,
    on an index as small as the sample, numba's LLVM (decision 46)."""
    with lede_serve(sample_index_dir) as (base_url, process):
        exercise(base_url, 3)
        memory = process_memory(process.pid)
    assert memory["torch_loaded"] is False
    assert memory["llvm_loaded"] is False
    assert memory["rss_mb"] > 0


def test_an_export_another_process_finished_while_this_one_waited_is_used(tmp_path: Path) -> None:
    """Processes starting together on a fresh machine (replicas) export a graph once: the
    others wait for the lock beside it and use what the first wrote."""
    graph = tmp_path / "onnx" / "graph.onnx"
    graph.parent.mkdir(parents=True)
    holder = os.open(graph.with_suffix(".lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process is exporting
    results: list[bool] = []
    waiting = threading.Thread(
        target=lambda: results.append(export_in_child("lede.no_such_exporter", graph=graph))
    )
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive()  # its turn has not come
    graph.write_bytes(b"a graph")
    sidecar_path(graph).write_text("{}")
    os.close(holder)  # the other export is done
    waiting.join(30)
    assert results == [True]  # used; its own exporter (which does not exist) never ran
    assert export_in_child("lede.no_such_exporter", graph=graph) is False  # nobody else did


def test_token_table_reads_the_rows_of_the_file(tmp_path: Path) -> None:
    table = np.random.default_rng(3).standard_normal((50, 8)).astype(np.float32)
    np.save(tmp_path / "table.npy", table)
    rows = TokenTable(tmp_path / "table.npy")
    ids = np.array([[3, 49, 3, 0], [7, 7, 7, 7]])
    assert np.array_equal(rows.rows(ids), table[ids])
    assert rows.rows(np.zeros((0, 3), dtype=np.int64)).shape == (0, 3, 8)
    with pytest.raises(ValueError, match="outside the table"):
        rows.rows(np.array([[50]]))
    (tmp_path / "short.npy").write_bytes((tmp_path / "table.npy").read_bytes()[:-4])
    with pytest.raises(OnnxUnavailable, match="truncated"):
        TokenTable(tmp_path / "short.npy")
    np.save(tmp_path / "ints.npy", np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(OnnxUnavailable, match="int32"):
        TokenTable(tmp_path / "ints.npy")


def test_light_answer_model_matches_pytorch(
    use_runtime: UseRuntime, sample_articles: list[Article]
) -> None:
    candidates = [
        (article.title, sentence)
        for article in sample_articles[:12]
        for sentence in article.text.split(". ")[:3]
    ]
    question = "Who plays Ethan Hunt in Mission: Impossible 7?"
    light = AnswerModel()
    assert light.light
    ours = light.logits(question, candidates)
    use_runtime(backend="torch")
    heavy = AnswerModel()
    assert not heavy.light
    theirs = heavy.logits(question, candidates)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    assert list(np.argsort(-ours)[:5]) == list(np.argsort(-theirs)[:5])


def session_graph(kind: str) -> Path:
    """The bundled answer model's classifier or reader graph (`kind`) in this session's model
    cache, exported there first when it is not yet."""
    model = AnswerModel()
    if kind == READER_KIND:
        assert model.reader is not None and model.reader.light
        return model.reader.graph
    assert model.light
    return model.graph


def copy_of_cache(graph: Path, folder: Path) -> Path:
    """A model cache in `folder` holding `graph`: the graph, its weights and its token table
    linked, its sidecar copied (the tests edit it). Returns the copied sidecar."""
    (folder / "onnx").mkdir(exist_ok=True)
    table = json.loads(sidecar_path(graph).read_text())["embeddings"]
    for name in (graph.name, f"{graph.name}.data", table):
        if not (folder / "onnx" / name).exists():  # two graphs share one table
            (folder / "onnx" / name).symlink_to(graph.parent / name)
    return Path(shutil.copy(sidecar_path(graph), folder / "onnx"))


def test_light_answer_model_checks_itself(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    use_runtime: UseRuntime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sidecar whose PyTorch logits the graph does not reproduce leaves PyTorch in charge."""
    sidecar = copy_of_cache(session_graph(SIDECAR_KIND), tmp_path)
    copy_of_cache(session_graph(READER_KIND), tmp_path)  # the model loads its reader too
    use_runtime(cache_dir=tmp_path)
    for module in (lede.service.answers.model, lede.service.answers.reader):
        monkeypatch.setattr(module, "export_in_child", lambda *_, **__: False)
    assert AnswerModel().light  # the copied graph, checked against its sidecar
    raw = json.loads(sidecar.read_text())
    raw["reference"] = [value + 0.5 for value in raw["reference"]]
    sidecar.write_text(json.dumps(raw))
    with caplog.at_level(logging.WARNING, logger="lede.service.answers.model_onnx"):
        model = AnswerModel()
        assert not model.light
    assert "logits differ from PyTorch" in caplog.text


def _windows(articles: list[Article]) -> list[tuple[str, str]]:
    return [(article.title, ". ".join(article.text.split(". ")[:3])) for article in articles[:10]]


def test_light_reader_matches_pytorch(
    use_runtime: UseRuntime, sample_articles: list[Article]
) -> None:
    """The span reader's graph gives PyTorch's spans and scores."""
    question = "Who plays Ethan Hunt in Mission: Impossible 7?"
    light = AnswerModel().reader
    assert light is not None
    ours = light.read(question, _windows(sample_articles))
    assert light.light
    use_runtime(backend="torch")
    heavy = AnswerModel().reader
    assert heavy is not None
    theirs = heavy.read(question, _windows(sample_articles))
    assert not heavy.light
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine is not None and reference is not None
        assert (mine.start, mine.end) == (reference.start, reference.end)
        assert mine.score == pytest.approx(reference.score, abs=1e-3)
        assert mine.null == pytest.approx(reference.null, abs=1e-3)


def test_light_reader_checks_itself(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    use_runtime: UseRuntime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reader graph whose sidecar PyTorch logits it does not reproduce is not used."""
    sidecar = copy_of_cache(session_graph(READER_KIND), tmp_path)
    use_runtime(cache_dir=tmp_path)
    monkeypatch.setattr(lede.service.answers.reader, "export_in_child", lambda *_, **__: False)
    reader = AnswerModel().reader
    assert reader is not None and reader.light
    raw = json.loads(sidecar.read_text())
    raw["reference"] = (np.asarray(raw["reference"]) + 0.5).tolist()
    sidecar.write_text(json.dumps(raw))
    with caplog.at_level(logging.WARNING, logger="lede.service.answers.model_onnx"):
        again = AnswerModel().reader
        assert again is not None and not again.light
    assert "answer-reader: logits differ from PyTorch" in caplog.text
