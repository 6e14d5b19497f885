"""The in-process query path: `SearchEngine.search` p50 per mode, with and without highlights.

    python -m lede.eval.bench.query --json eval/results/bench_query.json
    python -m lede.eval.ab BEFORE AFTER --rounds 2 -- bench_query --index DIR

Runs a BEIR dataset's queries (SciFact's test queries by default) against its index, k=10,
one thread, each query once to warm up. Highlighted and plain searches alternate query by
query, so the machine's drift falls on both. `--index` names an index built already (an A/B
gives both versions the same one); without it the dataset's cached evaluation index under
`.lede/eval-cache/` is opened, or built with the bundled model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, cast

from lede.eval.datasets import SHARED_DATASETS, load_beir
from lede.eval.relevance import RelevanceConfig, open_dataset_index
from lede.eval.report import percentiles, write_result
from lede.indexer.directory import open_index
from lede.service.engine import Mode, SearchEngine


def time_queries(
    engine: SearchEngine, queries: list[str], mode: Mode, k: int
) -> dict[str, dict[str, float]]:
    """p50/p95 of each query's search with highlights and without, alternated per query."""
    timings: dict[bool, list[float]] = {True: [], False: []}
    for number, query in enumerate(queries):
        order = (True, False) if number % 2 == 0 else (False, True)
        for highlight in order:
            started = time.perf_counter()
            engine.search(query, mode=mode, k=k, highlight=highlight)
            timings[highlight].append((time.perf_counter() - started) * 1000)
    return {
        "highlights": percentiles(timings[True]),
        "no_highlights": percentiles(timings[False]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=SHARED_DATASETS / "scifact")
    parser.add_argument("--index", type=Path, default=None, help="An index built already.")
    parser.add_argument("--modes", default="bm25,hybrid")
    parser.add_argument("--queries", type=int, default=None, help="At most this many.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    dataset = load_beir(args.dataset, max_queries=args.queries)
    if args.index is not None:
        index = open_index(args.index)
    else:
        index, _ = open_dataset_index(dataset, RelevanceConfig())
    engine = SearchEngine(index)
    queries = list(dataset.queries.values())
    modes = [cast(Mode, mode) for mode in args.modes.split(",")]
    figures: dict[str, Any] = {"chunks": index.stats()["chunks"], "queries": len(queries)}
    for mode in modes:
        for query in queries:  # warm-up: caches, lazy views, the encoder's first calls
            engine.search(query, mode=mode, k=args.k)
        figures[mode] = time_queries(engine, queries, mode, args.k)
    index.close()
    config = {"dataset": dataset.name, "k": args.k, "modes": modes, "threads": 1}
    write_result(args.json, "bench_query", config, figures)


if __name__ == "__main__":
    main()
