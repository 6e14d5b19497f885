"""The index's write lock: fair within a process, exclusive across processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lede.indexer.errors import IndexLockedError
from lede.indexer.files import WriteLock


def test_writers_in_one_process_get_the_lock_in_arrival_order(tmp_path: Path) -> None:
    order: list[int] = []
    first = WriteLock(tmp_path, timeout=5)
    first.acquire()
    threads = []
    for number in range(6):

        def write(number: int = number) -> None:
            with WriteLock(tmp_path, timeout=10):
                order.append(number)
                time.sleep(0.01)

        thread = threading.Thread(target=write)
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # arrive one after another
    first.release()
    for thread in threads:
        thread.join()
    assert order == list(range(6))


def test_a_writer_that_gives_up_leaves_the_queue(tmp_path: Path) -> None:
    holder = WriteLock(tmp_path, timeout=5)
    holder.acquire()
    with pytest.raises(IndexLockedError, match="in this process"):
        WriteLock(tmp_path, timeout=0.2).acquire()
    holder.release()
    with WriteLock(tmp_path, timeout=1):
        pass  # nobody is left waiting in front


def test_another_process_holding_the_lock_is_named(tmp_path: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path; from lede.indexer.files import WriteLock; "
        "lock = WriteLock(Path(sys.argv[1]), 5); lock.acquire(); print('held', flush=True); "
        "time.sleep(30)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexLockedError, match=f"pid {holder.pid}"):
            WriteLock(tmp_path, timeout=0.3).acquire()
    finally:
        holder.kill()
        holder.wait()
    with WriteLock(tmp_path, timeout=5):
        pass  # released by the OS when the holder died
