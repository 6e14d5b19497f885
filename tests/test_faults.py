"""Storage faults: a disk that fills up during indexing, and damaged or missing view files."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lede.eval.local_server import LEDE, lede_serve
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.index import LedeIndex
from lede.service.engine import SearchEngine
from tests.views import dense_of, lexical_of

pytestmark = pytest.mark.model


@pytest.fixture(params=["tmpfs", "file-size-limit"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, int | None]]:
    """A 4 MB tmpfs (where mounting is allowed, e.g. as root), or a plain directory where the
    indexer runs under a 1 MB file-size limit (RLIMIT_FSIZE: writes fail with EFBIG).

    Yields the directory and the file-size limit to apply (None on tmpfs).
    """
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if request.param == "file-size-limit":
        yield mount_point, 1_000_000
        return
    command = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)]
    if not shutil.which("mount") or subprocess.run(command, capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root); the file-size-limit case runs")
    try:
        yield mount_point, None
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def _limited(size: int | None) -> Callable[[], None]:
    def apply() -> None:
        if size is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, do not kill
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


def test_disk_full_during_indexing_keeps_the_index_readable(
    small_disk: tuple[Path, int | None],
    tmp_path: Path,
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    directory, file_limit = small_disk
    index_dir = directory / "index"
    base = tmp_path / "base.jsonl"
    base.write_text(
        "".join(
            json.dumps({"id": f"base-{i}", "text": f"Harbour report {i}. The ferry ran late."})
            + "\n"
            for i in range(10)
        )
    )
    assert subprocess.run([LEDE, "index", str(base), "--index", str(index_dir)]).returncode == 0
    if file_limit is None:  # leave about 600 kB free on the tmpfs
        free = shutil.disk_usage(directory).free
        (directory / "ballast").write_bytes(b"\0" * max(0, free - 600_000))
    filler = tmp_path / "filler.jsonl"
    filler.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"fill-{i}",
                    "text": " ".join(f"Filler {i} sentence {j} about tides." for j in range(60)),
                }
            )
            + "\n"
            for i in range(400)
        )
    )
    completed = subprocess.run(
        [LEDE, "index", str(filler), "--index", str(index_dir), "--batch-size", "20"],
        capture_output=True,
        text=True,
        preexec_fn=_limited(file_limit),
        timeout=600,
    )
    assert completed.returncode == 2, completed.stderr
    assert "cannot write" in completed.stderr and "Traceback" not in completed.stderr
    assert "rolled back" in completed.stderr
    assert "run the same command again" in completed.stderr
    with LedeIndex.open(index_dir, embedder=real_embedder) as index:
        ids = set(index.store.article_ids())
        assert {f"base-{i}" for i in range(10)} <= ids
        fills = sorted(i for i in ids if i.startswith("fill-"))
        assert len(fills) % 20 == 0  # whole batches only
        for article_id in fills:
            assert index.store.article_chunks(article_id)
        live = set(index.store.live_rowids().tolist())
        assert set(lexical_of(index).doc_ids) == live == set(dense_of(index).live_ids().tolist())
        hits = SearchEngine(index).search("ferry harbour", k=5).hits
        assert hits and hits[0].record.article_id.startswith("base-")


def test_damaged_view_refuses_to_serve_and_repair_rebuilds_it(
    tmp_path: Path, sample_index_dir: Path
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index_dir, index_dir)
    with LedeIndex.open(index_dir) as index:
        articles = index.store.counts()["articles"]
    (view,) = index_dir.glob("dense-*.faiss")
    view.write_bytes(b"not a faiss index")
    with (
        pytest.raises(RuntimeError, match="exited with code 3"),
        lede_serve(index_dir, log=tmp_path / "serve.log"),
    ):
        pass
    log = (tmp_path / "serve.log").read_text()
    assert "cannot serve" in log and f"lede repair --index {index_dir}" in log
    repaired = subprocess.run(
        [LEDE, "repair", "--index", str(index_dir)], capture_output=True, text=True
    )
    assert repaired.returncode == 0, repaired.stderr
    with lede_serve(index_dir) as (base_url, _):
        ready = httpx.get(f"{base_url}/ready", timeout=30).json()
        assert ready["articles"] == articles
        hits = httpx.get(f"{base_url}/search", params={"query": "rates"}, timeout=30).json()
        assert hits["hits"]


def test_missing_view_files_are_rebuilt_from_the_database(
    tmp_path: Path, sample_index_dir: Path
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index_dir, index_dir)
    for view in [*index_dir.glob("dense-*.faiss"), *index_dir.glob("bm25-*.npz")]:
        view.unlink()
    with lede_serve(index_dir) as (base_url, _):
        for mode in ("bm25", "dense", "hybrid"):
            response = httpx.get(
                f"{base_url}/search", params={"query": "interest rates", "mode": mode}, timeout=30
            )
            assert response.status_code == 200 and response.json()["hits"]
