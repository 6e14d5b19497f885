"""How a process runs models (`lede.indexer.runtime`): the thread count reaches ONNX Runtime's
sessions and export children, is read from `LEDE_MODEL_THREADS` by the settings only, and a
`lede` command hands it on to PyTorch."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from pydantic import ValidationError
from typer.testing import CliRunner

from lede.indexer import runtime
from lede.indexer.encoders.onnx_cache import open_session
from lede.service import cli
from lede.service.settings import RuntimeSettings

UseRuntime = Callable[..., runtime.ModelRuntime]


def _identity_graph() -> bytes:
    given = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    taken = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [given], [taken])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_sessions_compute_on_the_runtimes_threads(use_runtime: UseRuntime) -> None:
    graph = _identity_graph()
    onnx.checker.check_model(onnx.load_from_string(graph))
    use_runtime(threads=None)
    assert open_session(graph).get_session_options().intra_op_num_threads == 0  # one per core
    use_runtime(threads=1)
    assert open_session(graph).get_session_options().intra_op_num_threads == 1
    with pytest.raises(ValueError, match="threads must be at least 1"):
        runtime.ModelRuntime(threads=0)


def test_an_export_child_runs_as_its_parent(use_runtime: UseRuntime, tmp_path: Path) -> None:
    use_runtime(cache_dir=tmp_path, threads=3)
    arguments = runtime.child_arguments()
    assert arguments == ["--cache-dir", str(tmp_path), "--threads", "3"]
    use_runtime(cache_dir=tmp_path / "other", threads=None)
    assert runtime.child_arguments() == ["--cache-dir", str(tmp_path / "other")]
    assert runtime.configure_child([*arguments, "MODEL", "reader"]) == ["MODEL", "reader"]
    assert (runtime.current().cache_dir, runtime.current().threads) == (tmp_path, 3)


def test_model_threads_is_a_setting_a_command_hands_on_to_pytorch(
    monkeypatch: pytest.MonkeyPatch, use_runtime: UseRuntime
) -> None:
    monkeypatch.setenv("LEDE_MODEL_THREADS", "2")
    assert runtime.ModelRuntime().threads is None  # the library reads no variable
    assert RuntimeSettings().runtime().threads == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # restored after the test, as set before or not
    monkeypatch.delenv("OMP_NUM_THREADS")
    use_runtime()  # the command below configures this process; the fixture restores it
    result = CliRunner().invoke(cli.app, ["info", "--index", "missing"])
    assert result.exit_code == 2 and "missing" in result.stderr
    assert runtime.current().threads == 2 and os.environ["OMP_NUM_THREADS"] == "2"
    monkeypatch.setenv("LEDE_MODEL_THREADS", "0")
    with pytest.raises(ValidationError, match="model_threads"):
        RuntimeSettings()
    result = CliRunner().invoke(cli.app, ["info", "--index", "missing"])
    assert result.exit_code == 2
    assert "invalid setting: LEDE_MODEL_THREADS" in result.stderr
