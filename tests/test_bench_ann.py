"""A small run of `lede bench ann` (the full one is `--sizes 100000,1000000`)."""

from __future__ import annotations

import json
from pathlib import Path

from lede.eval.bench import ann as bench_ann
from lede.indexer.views.dense_search import pq_subvectors


def test_a_small_run_writes_rows_plot_and_honours_skip_prefixes_with_commas(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ann.json"
    plot = tmp_path / "ann.png"
    skipped = ["HNSW", "IVF1024,Flat", "IVF1024,SQ8", "IVF1024,PQ48"]
    argv = ["--sizes", "5000", "--queries", "20", "--cache", str(tmp_path / "no-cache")]
    argv += ["--json", str(out), "--plot", str(plot)]
    for prefix in skipped:
        argv += ["--skip", prefix]

    bench_ann.main(argv)

    result = json.loads(out.read_text())
    assert result["benchmark"] == "ann"
    assert result["config"]["skip"] == sorted(skipped)
    refined = bench_ann.REFINED.format(nlist=1024, pq=pq_subvectors(bench_ann.DIMENSION))
    # The refined fast-scan factory starts "IVF1024,PQ" too, but not "IVF1024,PQ48".
    assert {row["factory"] for row in result["results"]} == {"Flat", refined}
    flat = next(row for row in result["results"] if row["factory"] == "Flat")
    assert flat["recall@10"] == 1.0
    assert flat["synthetic_vectors"] == 5000  # no evaluation cache: all synthetic
    assert all(0.0 <= row["recall@10"] <= 1.0 for row in result["results"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
