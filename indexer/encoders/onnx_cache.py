"""Exported ONNX graphs on disk, and the child process that exports one.

Exporting a model to ONNX needs PyTorch; running the exported graph does not. So a process that
only runs models (an API replica, `lede serve`) exports in a short-lived child process when the
graph is not cached yet, and never imports PyTorch itself (decision 44). Each graph `KEY.onnx`
has a sidecar `KEY.json`: how to feed it and read its output, and reference outputs computed by
PyTorch on probe inputs, which the runner checks before it serves anything.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lede.indexer.runtime import child_arguments, current

logger = logging.getLogger(__name__)

OPSET = 17
# How graphs are traced (in every cache key): a new way (decision 57: eager attention) exports
# the models again instead of running what an older version left in the cache.
EXPORT_FORMAT = "eager-attention"
EXPORT_TIMEOUT_S = 600


class OnnxUnavailable(RuntimeError):
    """The model cannot be run by ONNX Runtime (not a transformer, export or load failed)."""


def cache_dir() -> Path:
    """Where exported models live: this process's runtime's cache folder."""
    return current().cache_dir


def package_version(name: str) -> str:
    """An installed package's version, read without importing it (importing torch is what a
    light process avoids)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def graph_path(*parts: str) -> Path:
    """The cache file of a graph identified by `parts` plus the exporting and running versions."""
    versions = (package_version("torch"), package_version("onnxruntime"), str(OPSET), EXPORT_FORMAT)
    key = hashlib.sha256("|".join((*parts, *versions)).encode()).hexdigest()[:20]
    return cache_dir() / "onnx" / f"{key}.onnx"


def sidecar_path(graph: Path) -> Path:
    return graph.with_suffix(".json")


def open_session(source: str | bytes) -> Any:
    """An ONNX Runtime session on the CPU, on the runtime's threads, whose idle threads sleep
    instead of spinning (spinning took a core from the FAISS and BM25 work that follows each
    query encoding, decision 22)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if current().threads is not None:
        options.intra_op_num_threads = current().threads
    try:
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise OnnxUnavailable(f"ONNX Runtime cannot load the model: {error}") from error


def write_atomic(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (a reader never sees half a graph)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        f.write(data)
    os.replace(f.name, path)


def read_sidecar(graph: Path, kind: str) -> dict[str, Any] | None:
    """The sidecar of a cached graph of this kind, or None when either file is missing or the
    sidecar is unreadable."""
    sidecar = sidecar_path(graph)
    if not graph.is_file() or not sidecar.is_file():
        return None
    try:
        raw = json.loads(sidecar.read_text())
    except (OSError, ValueError) as error:
        logger.warning("ONNX sidecar %s unreadable (%s); exporting again", sidecar, error)
        return None
    return raw if isinstance(raw, dict) and raw.get("kind") == kind else None


def _written(graph: Path) -> tuple[int, int] | None:
    """When and how large `graph` was written, or None when it is not there."""
    try:
        found = graph.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


@contextmanager
def _exporting(graph: Path) -> Iterator[None]:
    """One export of `graph` at a time across processes (an exclusive `flock` beside it), so
    replicas starting together on a fresh machine export it once; without a writable cache,
    no lock (each process keeps its own export in memory anyway)."""
    try:
        graph.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(graph.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)  # the holder's export ends within its timeout
        yield
    finally:
        os.close(handle)


def export_in_child(module: str, *args: str, graph: Path) -> bool:
    """Run `python -m MODULE ARGS...` (an exporter that writes `graph` and its sidecar into
    the cache); True when it succeeded. The child's PyTorch dies with it. When another process
    wrote `graph` while this one waited for its turn, that export is used instead."""
    before = _written(graph)
    with _exporting(graph):
        if _written(graph) != before and sidecar_path(graph).is_file():
            logger.info("another process exported %s meanwhile", graph.name)
            return True
        return _run_export(module, *args)


def _run_export(module: str, *args: str) -> bool:
    command = [sys.executable, "-m", module, *child_arguments(), *args]
    logger.info("exporting a model to ONNX in a child process: %s", " ".join(command[2:]))
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.warning("ONNX export process failed: %s", error)
        return False
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        logger.info("ONNX export process exited %d: %s", done.returncode, tail[0])
        return False
    return True
