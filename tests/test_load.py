"""A short load run (the 10-minute one is `lede bench load --clients 16 --duration 600`):
concurrent searches, answers, reads and versioned rewrites through a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from lede.eval.bench.load import Load, run, versioned_text

pytestmark = [pytest.mark.model, pytest.mark.server]


def test_mixed_load_has_no_errors_and_no_torn_reads(tmp_path: Path) -> None:
    result = run(clients=8, duration=15, versioned=4, seed=3, workdir=tmp_path)
    assert result["errors"] == 0, result["error_samples"]
    assert result["torn_reads"] == 0, result["torn_samples"]
    assert result["requests"] >= 50
    assert result["endpoints"]["PUT /articles/{id}"]["requests"] >= 5
    assert result["endpoints"]["GET /articles/{id}"]["requests"] >= 5


def test_the_torn_read_check_catches_mixed_versions() -> None:
    load = Load("http://127.0.0.1:9", versioned=1, seed=0)
    consistent = [{"article_id": "load-0", "text": versioned_text(0, 2)[:300]}] * 2
    load._check_torn("GET /search", "/search", {"hits": consistent})
    assert load.torn == []
    mixed = [
        {"article_id": "load-0", "text": versioned_text(0, 1)[:300]},
        {"article_id": "load-0", "text": versioned_text(0, 2)[:300]},
    ]
    load._check_torn("GET /search", "/search", {"hits": mixed})
    assert len(load.torn) == 1
    text = versioned_text(0, 3)
    misaligned = {"text": text, "chunks": [{"start": 7, "end": 60}]}  # spans of another text
    load._check_torn("GET /articles/{id}", "/articles/load-0", misaligned)
    assert len(load.torn) == 2
