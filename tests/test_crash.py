"""SIGKILL `lede index` at random points, and `lede serve` during API writes: the index
opens, holds exactly what was committed (acknowledged), and a re-run completes it."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from lede.eval.local_server import LEDE, lede_serve
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import Article
from tests.views import dense_of, lexical_of

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.server]


def _corpus(path: Path, sample_articles: list[Article], copies: int) -> int:
    rows = []
    for copy in range(copies):
        for article in sample_articles:
            data = article.model_dump(mode="json")
            data["id"] = f"{article.id}-{copy}"
            data["text"] = f"Copy {copy}. {article.text}"
            rows.append(json.dumps(data))
    path.write_text("\n".join(rows) + "\n")
    return len(rows)


def _check_consistent(index: LedeIndex) -> int:
    live = set(index.store.live_rowids().tolist())
    assert set(lexical_of(index).doc_ids) == live
    assert set(dense_of(index).live_ids().tolist()) == live
    for article_id in index.store.article_ids():
        ordinals = [c.ordinal for c in index.store.article_chunks(article_id)]
        assert ordinals == list(range(len(ordinals))) and ordinals  # whole articles only
    return index.store.counts()["articles"]


def test_sigkill_during_indexing_loses_nothing(
    tmp_path: Path, sample_articles: list[Article], real_embedder: SentenceTransformerEmbedder
) -> None:
    source = tmp_path / "corpus.jsonl"
    total = _corpus(source, sample_articles, copies=8)
    path = tmp_path / "index"
    command = [LEDE, "index", str(source), "--index", str(path), "--batch-size", "8", "--json"]
    rng = random.Random(20201014)
    committed = 0
    for _ in range(4):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(4.0, 9.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        if not (path / "manifest.json").exists():
            continue
        with LedeIndex.open(path, embedder=real_embedder) as index:
            count = _check_consistent(index)
        assert count >= committed  # nothing acknowledged earlier is lost
        committed = count
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["added"] + report["unchanged"] + report["updated"] == total
    with LedeIndex.open(path, embedder=real_embedder) as index:
        assert _check_consistent(index) == total
        fresh = LedeIndex.create(tmp_path / "fresh", embedder=real_embedder)
        fresh.add(Article.model_validate_json(line) for line in source.read_text().splitlines())
        assert index.store.counts() == fresh.store.counts()
        query = real_embedder.embed(["Tom Cruise car chase in Rome"])
        a, _ = dense_of(index).search(query, 5)
        b, _ = dense_of(fresh).search(query, 5)
        chunk_ids = [index.store.chunk_records(a[0].tolist())[r].chunk_id for r in a[0].tolist()]
        fresh_ids = [fresh.store.chunk_records(b[0].tolist())[r].chunk_id for r in b[0].tolist()]
        assert chunk_ids == fresh_ids
        assert np.isfinite(lexical_of(index).average_length)
        fresh.close()


def test_sigkill_of_the_service_during_writes_keeps_every_acknowledged_write(
    tmp_path: Path, sample_index_dir: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    """Kill `lede serve` (uvicorn) while a client streams PUTs: after a restart every write
    that was answered 200 is there whole, and the one in flight is there whole or absent."""
    index_dir = tmp_path / "index"
    shutil.copytree(sample_index_dir, index_dir)
    key = "crash-key-0123456789abcdef"
    acknowledged: dict[str, str] = {}
    stop = threading.Event()

    def write(base_url: str) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            number = 0
            while not stop.is_set():
                article_id = f"stream-{number}"
                text = f"Write number {number}. " + "The council met again about the bridge. " * 5
                try:
                    response = client.put(f"{base_url}/articles/{article_id}", json={"text": text})
                except httpx.HTTPError:
                    return  # the server is gone
                assert response.status_code == 200, response.text
                acknowledged[article_id] = text
                number += 1

    with lede_serve(index_dir, env={"LEDE_API_KEYS": key}) as (base_url, process):
        writer = threading.Thread(target=write, args=(base_url,))
        writer.start()
        time.sleep(random.Random(7).uniform(3.0, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        stop.set()
        writer.join(timeout=60)
    assert len(acknowledged) >= 5
    with LedeIndex.open(index_dir, embedder=real_embedder) as index:
        _check_consistent(index)
        for article_id, text in acknowledged.items():
            stored = index.store.get_article(article_id)
            assert stored is not None and stored.text == text
    with lede_serve(index_dir, env={"LEDE_API_KEYS": key}) as (base_url, _):
        last = max(acknowledged, key=lambda name: int(name.split("-")[1]))
        assert httpx.get(f"{base_url}/articles/{last}", timeout=30).status_code == 200
        hits = httpx.get(f"{base_url}/search", params={"query": "bridge council"}, timeout=30)
        assert hits.status_code == 200 and hits.json()["hits"]
