"""schemathesis against the running service's own OpenAPI schema (a short run; the long one is
`lede bench fuzz --examples 100`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lede.eval.bench.fuzz import run

pytestmark = [pytest.mark.model, pytest.mark.server]


def test_generated_requests_find_no_failures(tmp_path: Path) -> None:
    result = run(examples=10, seed=7, workdir=tmp_path)
    assert result["schemathesis_exit_code"] == 0, result["output_tail"]
    assert result["server_errors"] == 0
    assert result["error_shape_violations"] == []
    assert result["requests"] >= 200
