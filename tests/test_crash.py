"""SIGKILL `lede index` at random points: the index opens, holds exactly what was
committed, and a re-run completes it."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from indexer.embedder import SentenceTransformerEmbedder
from indexer.index import LedeIndex
from indexer.models import Article

pytestmark = [pytest.mark.model, pytest.mark.slow]
LEDE = str(Path(sys.executable).parent / "lede")


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
    assert set(index.lexical.doc_ids) == live
    assert set(index.dense.live_ids().tolist()) == live
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
        a, _ = index.dense.search(query, 5)
        b, _ = fresh.dense.search(query, 5)
        chunk_ids = [index.store.chunk_records(a[0].tolist())[r].chunk_id for r in a[0].tolist()]
        fresh_ids = [fresh.store.chunk_records(b[0].tolist())[r].chunk_id for r in b[0].tolist()]
        assert chunk_ids == fresh_ids
        assert np.isfinite(index.lexical.average_length)
        fresh.close()
