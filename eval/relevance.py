"""Relevance evaluation on BEIR-format datasets: nDCG@10, Recall@100, MAP, MRR@10 per mode,
with paired significance tests between modes (ranx)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ranx import Qrels, Run, compare, evaluate

from lede.eval.datasets import BeirDataset
from lede.eval.report import git_sha, machine, percentiles
from lede.indexer.directory import Index, create_index, open_index
from lede.indexer.encoders.embedder import Embedder, SentenceTransformerEmbedder
from lede.indexer.manifest import IndexSettings
from lede.indexer.shards.layout import is_sharded
from lede.indexer.sources import Skipped, read_source
from lede.service.engine import EngineSettings, Mode, SearchEngine

logger = logging.getLogger(__name__)

METRICS = ["ndcg@10", "recall@100", "map", "mrr@10"]
DEFAULT_CACHE = Path(".lede") / "eval-cache"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RelevanceConfig:
    modes: tuple[Mode, ...] = ("bm25", "dense", "hybrid")
    model: str = "all-MiniLM-L6-v2"
    depth: int = 100
    index: IndexSettings = field(default_factory=IndexSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    # Extra hybrid runs reported beside the default, e.g. {"hybrid_convex": {"fusion": ...}}.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards: int | None = None  # evaluate a sharded index of this many shards (same figures)

    def index_key(self, dataset: BeirDataset) -> str:
        """Keyed by the corpus's content (not its path or mtime: a copied dataset still hits)."""
        with dataset.corpus.open("rb") as corpus:
            content = hashlib.file_digest(corpus, "sha256").hexdigest()
        # Keyed as before for one index (its cached indexes stay valid); shards add a part.
        parts: list[Any] = [content, self.model, asdict(self.index)]
        if self.shards is not None:
            parts.append({"shards": self.shards})
        payload = json.dumps(parts, sort_keys=True, default=str)
        return f"{dataset.name}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def open_dataset_index(
    dataset: BeirDataset,
    config: RelevanceConfig,
    cache: Path = DEFAULT_CACHE,
    embedder: Embedder | None = None,
) -> tuple[Index, float]:
    """Build the dataset's index, or reuse the one cached for the same data and settings.

    Returns:
        The open index and the seconds spent building it (0 when reused).
    """
    path = cache / config.index_key(dataset)
    embedder = embedder or SentenceTransformerEmbedder(config.model)
    if (path / "manifest.json").exists() or is_sharded(path):
        index = open_index(path, embedder=embedder)
        if index.stats()["articles"] > 0:
            return index, 0.0
        index.close()
    started = time.perf_counter()
    index = create_index(path, shards=config.shards, embedder=embedder, settings=config.index)
    articles = (item for item in read_source(dataset.corpus) if not isinstance(item, Skipped))
    index.add(articles, batch_size=1024)
    return index, time.perf_counter() - started


def run_mode(
    engine: SearchEngine,
    queries: dict[str, str],
    mode: Mode,
    depth: int,
    overrides: dict[str, Any] | None = None,
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Document scores per query (best chunk per document) and per-query latency in ms."""
    run: dict[str, dict[str, float]] = {}
    latencies = []
    for query_id, text in queries.items():
        started = time.perf_counter()
        result = engine.search(
            text, mode=mode, k=depth, group="article", highlight=False, overrides=overrides
        )
        latencies.append((time.perf_counter() - started) * 1000)
        run[query_id] = {hit.record.article_id: hit.score for hit in result.hits}
    return run, latencies


def write_trec_runs(
    folder: Path, dataset: str, runs: dict[str, dict[str, dict[str, float]]]
) -> None:
    """One TREC run file per run: `query Q0 doc rank score name`, scores as `repr` floats."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, run in runs.items():
        lines = [
            f"{query} Q0 {doc} {rank} {score!r} {name}"
            for query, scores in run.items()
            for rank, (doc, score) in enumerate(scores.items(), start=1)
        ]
        (folder / f"{dataset}.{name}.trec").write_text("\n".join(lines) + "\n")


@dataclass(frozen=True, slots=True)
class IdNames:
    """Every query and document id renamed to a 9-digit string, numbered in the ids' sorted
    order (decision 55).

    ranx compiles its numba loops for the width of the longest id it is given, so every
    dataset cost a compile of its own (about 20 s); with one width they compile once, and
    numba's cache keeps them. The metrics are the same: the renaming is one to one, keeps the
    order ranx sorts queries in, and `rename` keeps dict order (ties keep insertion order).
    """

    queries: dict[str, str]
    documents: dict[str, str]

    @classmethod
    def of(cls, queries: Iterable[str], documents: Iterable[str]) -> IdNames:
        def numbered(ids: Iterable[str]) -> dict[str, str]:
            return {name: f"{i:09d}" for i, name in enumerate(sorted(set(ids)))}

        return cls(numbered(queries), numbered(documents))

    def rename(self, table: dict[str, dict[str, T]]) -> dict[str, dict[str, T]]:
        """Judgments or a run under the new names, in the same order."""
        return {
            self.queries[q]: {self.documents[d]: value for d, value in row.items()}
            for q, row in table.items()
        }


def uniform_ids(
    qrels: dict[str, dict[str, int]], runs: dict[str, dict[str, dict[str, float]]]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, dict[str, float]]]]:
    """The same judgments and runs under `IdNames` of every id they hold."""
    tables: list[dict[str, dict[str, Any]]] = [qrels, *runs.values()]
    names = IdNames.of(
        (q for table in tables for q in table),
        (d for table in tables for row in table.values() for d in row),
    )
    return names.rename(qrels), {name: names.rename(run) for name, run in runs.items()}


def score_runs(
    qrels: dict[str, dict[str, int]], runs: dict[str, dict[str, dict[str, float]]]
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Metrics per run, and paired two-sided t-tests between every pair of runs."""
    runs = {
        name: {q: (run.get(q) or {"__none__": 0.0}) for q in qrels} for name, run in runs.items()
    }
    qrels, runs = uniform_ids(qrels, runs)
    judged = Qrels(qrels)
    metrics: dict[str, dict[str, float]] = {}
    ranx_runs = []
    for name, run in runs.items():
        ranx_run = Run(run, name=name)
        ranx_runs.append(ranx_run)
        values = evaluate(judged, ranx_run, METRICS, make_comparable=True)
        metrics[name] = {m: round(float(values[m]), 4) for m in METRICS}
    significance: dict[str, Any] = {"test": "paired two-sided Student's t", "p_values": {}}
    if len(ranx_runs) > 1:
        report = compare(judged, ranx_runs, metrics=METRICS, stat_test="student")
        table = report.to_dict()
        names = list(runs)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                significance["p_values"][f"{first}_vs_{second}"] = {
                    m: round(float(table[first]["comparisons"][second][m]), 5) for m in METRICS
                }
    return metrics, significance


def evaluate_dataset(
    dataset: BeirDataset,
    config: RelevanceConfig,
    cache: Path = DEFAULT_CACHE,
    embedder: Embedder | None = None,
    runs_dir: Path | None = None,
) -> dict[str, Any]:
    """Evaluate every configured mode on one dataset; the JSON shape of `lede eval relevance`.

    With `runs_dir`, each run is also written as a TREC run file (scores in full precision),
    so two versions of Lede can be compared ranking by ranking.
    """
    index, build_s = open_dataset_index(dataset, config, cache, embedder)
    try:
        engine = SearchEngine(index, config.engine)
        engine.warm_up()
        runs: dict[str, dict[str, dict[str, float]]] = {}
        timings: dict[str, Any] = {"index_build_s": round(build_s, 1)}
        for mode in config.modes:
            runs[mode], latencies = run_mode(engine, dataset.queries, mode, config.depth)
            timings[f"{mode}_query"] = percentiles(latencies)
        for name, overrides in config.variants.items():
            runs[name], latencies = run_mode(
                engine, dataset.queries, "hybrid", config.depth, overrides
            )
            timings[f"{name}_query"] = percentiles(latencies)
        metrics, significance = score_runs(dataset.qrels, runs)
        if runs_dir is not None:
            write_trec_runs(runs_dir, dataset.name, runs)
        counts = index.stats()
    finally:
        index.close()
    return {
        "dataset": dataset.name,
        "settings": {
            "model": config.model,
            "modes": list(config.modes),
            "depth": config.depth,
            "queries": len(dataset.queries),
            "documents": counts["articles"],
            "chunks": counts["chunks"],
            "index": asdict(config.index),
            "engine": asdict(config.engine),
            "variants": config.variants,
            "shards": config.shards,
        },
        "git_sha": git_sha(),
        "machine": machine(),
        "timings": timings,
        "metrics": metrics,
        "significance": significance,
    }


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A markdown table: one row per dataset and mode."""
    lines = [
        "| dataset | mode | nDCG@10 | Recall@100 | MAP | MRR@10 |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        for mode, values in result["metrics"].items():
            cells = " | ".join(f"{values[m]:.3f}" for m in METRICS)
            lines.append(f"| {result['dataset']} | {mode} | {cells} |")
    return "\n".join(lines)
