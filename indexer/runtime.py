"""How this process runs models: the embedding backend, and where exported graphs are cached.

Library code reads `current()` and never the environment. A process's entry point sets it from
its settings (`lede` commands and the app from `LEDE_EMBED_BACKEND` and `LEDE_CACHE_DIR`, read
by the service's settings object); a Ray actor gets its driver's as an argument, and an export
child process gets the cache folder on its command line. Unset, the defaults hold: ONNX Runtime
and the user's cache folder (`~/.cache/lede` on Linux).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import platformdirs

Backend = Literal["onnx", "torch"]
BACKENDS: tuple[Backend, ...] = ("onnx", "torch")
CACHE_OPTION = "--cache-dir"


def default_cache_dir() -> Path:
    """The user's cache folder for Lede (platformdirs: `$XDG_CACHE_HOME/lede` on Linux)."""
    return Path(platformdirs.user_cache_dir("lede"))


@dataclass(frozen=True, slots=True)
class ModelRuntime:
    """`backend`: run the models in ONNX Runtime without PyTorch where they can ("onnx") or in
    PyTorch ("torch"). `cache_dir`: where the models' ONNX exports are kept."""

    backend: Backend = "onnx"
    cache_dir: Path = field(default_factory=default_cache_dir)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")


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
    """What an export child process needs to use this process's cache: `--cache-dir DIR`."""
    return [CACHE_OPTION, str(current().cache_dir)]


def configure_child(argv: list[str]) -> list[str]:
    """In an export child: take `--cache-dir DIR` off the front of `argv` and use that cache;
    returns the remaining arguments."""
    if argv[:1] == [CACHE_OPTION] and len(argv) >= 2:
        configure(ModelRuntime(current().backend, Path(argv[1])))
        return argv[2:]
    return argv
