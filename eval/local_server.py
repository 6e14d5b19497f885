"""Helpers for talking to a Lede service started on this machine (benchmarks and tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

LEDE = str(Path(sys.executable).parent / "lede")  # the console script of this environment
SAMPLES = Path(__file__).resolve().parent.parent / "examples" / "articles.jsonl"


def run_lede(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `lede ARGS...` and capture its output as text."""
    return subprocess.run([LEDE, *args], capture_output=True, text=True, timeout=timeout)


def index_with_lede(index: Path, *sources: Path) -> None:
    """`lede index SOURCES... --index INDEX`, as a user runs it.

    Raises:
        RuntimeError: the command failed (its stderr is the message).
    """
    completed = run_lede("index", *map(str, sources), "--index", str(index))
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    base_url: str, timeout: float = 180.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `/ready` until it answers 200.

    Raises:
        TimeoutError: the service was not ready within `timeout` seconds.
        RuntimeError: `process` (the server) exited first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} not ready after {timeout} s")


@contextmanager
def lede_serve(
    index: Path,
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    args: Sequence[str] = (),
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `lede serve --index INDEX` (a real uvicorn process) on `port` (default: a free one)
    until the block exits; yields the base URL once `/ready` answers, and the process."""
    port = port or free_port()
    command = [LEDE, "serve", "--index", str(index), "--port", str(port), *args]
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=output, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process=process)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log:
            output.close()  # type: ignore[union-attr]
