"""`lede.eval.ab`: which module a revision runs, and the summary of alternated rounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from lede.eval.ab import flatten, main, module_name, summarize


def test_the_layout_decides_the_module(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('packages = ["lede.indexer", "lede.eval"]\n')
    assert module_name(tmp_path, "bench_service") == "lede.eval.bench_service"
    (tmp_path / "pyproject.toml").write_text('packages = ["indexer", "service", "eval"]\n')
    assert module_name(tmp_path, "bench_service") == "eval.bench_service"
    (tmp_path / "eval" / "bench").mkdir(parents=True)  # family subpackages (decision 54)
    assert module_name(tmp_path, "bench_service") == "lede.eval.bench.service"
    assert module_name(tmp_path, "load") == "lede.eval.bench.load"


def test_timings_are_medians_per_version_with_their_ratio() -> None:
    def run(p50: float, qps: float) -> dict[str, object]:
        return {"results": {"rows": [{"total": {"p50_ms": p50}, "qps": qps, "size": 5000}]}}

    runs = {
        "before": [run(10.0, 100.0), run(12.0, 90.0)],
        "after": [run(11.0, 95.0), run(13.0, 85.0)],
    }
    summary = summarize(runs)
    assert summary["rows.0.total.p50_ms"] == {
        "before": 11.0,
        "after": 12.0,
        "after_over_before": 1.091,
    }
    assert summary["rows.0.qps"]["after_over_before"] == round(90.0 / 95.0, 3)
    assert "rows.0.size" not in summary  # not a timing
    assert flatten({"a": [1, {"b": 2.5}], "ok": True}) == {"a.0": 1.0, "a.1.b": 2.5}


def test_a_benchmark_must_follow_the_double_dash() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["HEAD~1", "HEAD", "--rounds", "1"])
    assert exit_info.value.code == 2
