"""How this process runs models: the embedding backend, where exported graphs are cached, and
on how many threads.

Library code reads `current()` and never the environment. A process's entry point sets it from
its settings (`lede` commands and the app from `LEDE_EMBED_BACKEND`, `LEDE_CACHE_DIR` and
`LEDE_MODEL_THREADS`, read by the service's settings object); a Ray actor gets its driver's as an
argument, and an export child process gets the cache folder and the threads on its command
line. Unset, the defaults hold: ONNX Runtime, the user's cache folder (`~/.cache/lede` on Linux)
and the runtime's own thread count (one per core).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import platformdirs

Backend = Literal["onnx", "torch"]
BACKENDS: tuple[Backend, ...] = ("onnx", "torch")
CACHE_OPTION = "--cache-dir"
THREADS_OPTION = "--threads"


def default_cache_dir() -> Path:
    """The user's cache folder for Lede (platformdirs: `$XDG_CACHE_HOME/lede` on Linux)."""
    return Path(platformdirs.user_cache_dir("lede"))


@dataclass(frozen=True, slots=True)
class ModelRuntime:
    """`backend`: run the models in ONNX Runtime without PyTorch where they can ("onnx") or in
    PyTorch ("torch"). `cache_dir`: where the models' ONNX exports are kept. `threads`: the
    threads each ONNX Runtime session computes on (None: one per core); processes that share
    a machine (server workers, test workers) each take their part of it."""

    backend: Backend = "onnx"
    cache_dir: Path = field(default_factory=default_cache_dir)
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


_current = ModelRuntime()


def current() -> ModelRuntime:
    """The runtime this process's entry point configured (the defaults when none did)."""
    return _current


def configure(runtime: ModelRuntime) -> ModelRuntime:
    """Set this process's runtime; returns the one it replaces."""
    global _current
    previous, _current = _current, runtime
    return previous


def child_arguments() -> list[str]:
    """What an export child process needs to run as this one: `--cache-dir DIR [--threads N]`."""
    threads = current().threads
    return [CACHE_OPTION, str(current().cache_dir)] + (
        [] if threads is None else [THREADS_OPTION, str(threads)]
    )


def configure_child(argv: list[str]) -> list[str]:
    """In an export child: take `--cache-dir DIR` and `--threads N` off the front of `argv` and
    run so; returns the remaining arguments."""
    chosen = current()
    while len(argv) >= 2 and argv[0] in (CACHE_OPTION, THREADS_OPTION):
        if argv[0] == CACHE_OPTION:
            chosen = replace(chosen, cache_dir=Path(argv[1]))
        else:
            chosen = replace(chosen, threads=int(argv[1]))
        argv = argv[2:]
    configure(chosen)
    return argv
