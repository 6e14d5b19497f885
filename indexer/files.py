"""Crash-safe file writes and the index's cross-process write lock."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType

from lede.indexer.errors import IndexLockedError


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one whole.

    Temp file in the same directory, fsync, rename over the target, fsync the directory.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class _FifoLock:
    """A lock granted in arrival order (threads of one process queue fairly for a writer slot)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True  # the previous holder handed the lock over
        with self._mutex:
            if turn.is_set():
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # stays held, now by the next in line
            else:
                self._held = False


_QUEUES: dict[Path, _FifoLock] = {}
_QUEUES_GUARD = threading.Lock()


def _queue(path: Path) -> _FifoLock:
    with _QUEUES_GUARD:
        return _QUEUES.setdefault(path.resolve(), _FifoLock())


class WriteLock:
    """An exclusive `flock` on `DIR/write.lock`: one writer per index across processes.

    Writers in one process first queue in arrival order (so none starves behind the others
    under load), then the queue's head takes the `flock` against other processes. The OS
    releases the `flock` when the holder dies, so a killed writer never wedges the index.
    """

    def __init__(self, directory: Path, timeout: float = 60.0):
        self.path = directory / "write.lock"
        self.timeout = timeout
        self._handle: int | None = None
        self._queue = _queue(self.path)

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        if not self._queue.acquire(self.timeout):
            raise IndexLockedError(
                f"other writes to {self.path.parent} in this process kept it busy for "
                f"{self.timeout:.0f} s. Retry when they have finished."
            )
        try:
            self._lock_file(deadline)
        except BaseException:
            self._queue.release()
            raise

    def _lock_file(self, deadline: float) -> None:
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(handle)
                    raise IndexLockedError(
                        f"another process (pid {holder}) is writing to {self.path.parent}; "
                        f"waited {self.timeout:.0f} s. Retry when it has finished."
                    ) from None
                time.sleep(0.05)
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            os.close(self._handle)
            self._handle = None
            self._queue.release()

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
