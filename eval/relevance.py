"""Relevance evaluation on BEIR-format datasets: nDCG@10, Recall@100, MAP, MRR@10 per mode,
with paired significance tests between modes (`lede.eval.metrics`)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lede.eval.datasets import BeirDataset
from lede.eval.metrics import METRICS, score_runs
from lede.eval.report import git_sha, machine, percentiles
from lede.indexer.directory import Index, create_index, open_index
from lede.indexer.encoders.embedder import Embedder, SentenceTransformerEmbedder
from lede.indexer.manifest import IndexSettings
from lede.indexer.shards.layout import is_sharded
from lede.indexer.sources import Skipped, read_source
from lede.service.engine import EngineSettings, Mode, SearchEngine

logger = logging.getLogger(__name__)

DEFAULT_CACHE = Path(".lede") / "eval-cache"


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
