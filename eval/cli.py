"""`lede eval ...`, `lede train ...` and `lede bench ...`: the evaluation's commands.

They join the product's `lede` command as a plugin: `register` is the `lede.commands` entry
point in pyproject.toml, which `service.cli.main` loads. Nothing in the service imports this.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from lede.eval.datasets import SHARED_DATASETS, datasets_with_qrels, load_beir
from lede.indexer.chunker import ChunkerSettings
from lede.indexer.manifest import IndexSettings
from lede.indexer.views.lexical import BM25Settings
from lede.service.cli_help import PlainHelpCommand
from lede.service.engine import MODES, EngineSettings, Mode

eval_app = typer.Typer(help="Measure retrieval and answer quality.", no_args_is_help=True)
ENGINE = EngineSettings()
BM25 = BM25Settings()


def _modes(value: str) -> tuple[Mode, ...]:
    modes = []
    for name in (part.strip() for part in value.split(",") if part.strip()):
        match = next((m for m in MODES if m == name), None)
        if match is None:
            typer.echo(f"error: unknown mode {name!r}; use {', '.join(MODES)}", err=True)
            raise typer.Exit(2)
        modes.append(match)
    return tuple(modes)


def _variants(values: list[str]) -> dict[str, dict[str, object]]:
    """Parse NAME:key=value,key=value into engine overrides."""
    variants: dict[str, dict[str, object]] = {}
    for value in values:
        name, _, spec = value.partition(":")
        overrides: dict[str, object] = {}
        for pair in filter(None, spec.split(",")):
            key, _, raw = pair.partition("=")
            key = key.strip()
            overrides[key] = raw if key in ("fusion", "normalization") else float(raw)
        variants[name.strip()] = overrides
    return variants


@eval_app.command("relevance", cls=PlainHelpCommand)
def relevance_command(
    datasets: Annotated[
        list[str],
        typer.Argument(help="BEIR-format folders, or 'all' for every dataset with qrels."),
    ],
    modes: Annotated[str, typer.Option(help="Comma-separated modes.")] = "bm25,dense,hybrid",
    model: Annotated[str, typer.Option(help="Embedding model name or path.")] = "all-MiniLM-L6-v2",
    split: Annotated[str, typer.Option(help="Qrels split: test, or train where present.")] = "test",
    chunk_tokens: Annotated[int, typer.Option(help="Chunk budget in tokens.")] = 128,
    overlap: Annotated[int, typer.Option(help="Sentences of chunk overlap.")] = 1,
    fusion: Annotated[str, typer.Option(help="convex or rrf.")] = ENGINE.fusion,
    alpha: Annotated[float, typer.Option(help="Dense share for convex fusion.")] = ENGINE.alpha,
    normalization: Annotated[
        str, typer.Option(help="Convex fusion scaling: max or minmax.")
    ] = ENGINE.normalization,
    rrf_k: Annotated[float, typer.Option(help="RRF constant.")] = ENGINE.rrf_k,
    bm25_k1: Annotated[float, typer.Option(help="BM25 term-frequency saturation.")] = BM25.k1,
    bm25_b: Annotated[float, typer.Option(help="BM25 length normalization, 0-1.")] = BM25.b,
    max_queries: Annotated[
        int | None, typer.Option(help="Evaluate a seeded random sample of this many queries.")
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(help="Extra hybrid run NAME:fusion=convex,alpha=0.5 (repeatable)."),
    ] = None,
    cache: Annotated[Path, typer.Option(help="Where built indexes are kept.")] = Path(
        ".lede/eval-cache"
    ),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
    runs: Annotated[
        Path | None,
        typer.Option(help="Write each run as a TREC run file here (DATASET.MODE.trec)."),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Evaluate a sharded index of N shards instead."),
    ] = None,
) -> None:
    """nDCG@10, Recall@100, MAP and MRR@10 per mode, with paired significance tests."""
    from lede.eval.relevance import RelevanceConfig, evaluate_dataset, format_table

    paths = datasets_with_qrels() if datasets == ["all"] else [Path(d) for d in datasets]
    if not paths:
        typer.echo(f"error: no datasets found (looked in {SHARED_DATASETS})", err=True)
        raise typer.Exit(2)
    try:
        config = RelevanceConfig(
            modes=_modes(modes),
            model=model,
            index=IndexSettings(
                chunker=ChunkerSettings(max_tokens=chunk_tokens, overlap_sentences=overlap),
                bm25=BM25Settings(k1=bm25_k1, b=bm25_b),
            ),
            engine=EngineSettings(
                fusion=fusion,  # type: ignore[arg-type]
                normalization=normalization,  # type: ignore[arg-type]
                alpha=alpha,
                rrf_k=rrf_k,
            ),
            variants=_variants(variant or []),
            shards=shards,
        )
        loaded = [load_beir(path, split, max_queries=max_queries) for path in paths]
    except (ValueError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    results = []
    for dataset in loaded:
        typer.echo(f"evaluating {dataset.name} ({len(dataset.queries)} queries)...", err=True)
        results.append(evaluate_dataset(dataset, config, cache, runs_dir=runs))
    typer.echo(format_table(results))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        payload = results[0] if len(results) == 1 else {"results": results}
        json_out.write_text(json.dumps(payload, indent=2) + "\n")


@eval_app.command("qa", cls=PlainHelpCommand)
def qa_command(
    squad: Annotated[Path, typer.Option(help="SQuAD v1.1 dev folder (BEIR view + qa/).")] = (
        SHARED_DATASETS / "squad-v1.1-dev"
    ),
    wikiqa: Annotated[Path, typer.Option(help="WikiQA folder with qa/test.jsonl.")] = (
        SHARED_DATASETS / "wikiqa"
    ),
    trecqa: Annotated[Path, typer.Option(help="TrecQA folder with qa/test.jsonl (clean).")] = (
        SHARED_DATASETS / "trecqa"
    ),
    news: Annotated[
        Path, typer.Option(help="reuters-qa folder (asked of the whole Reuters-21578 corpus).")
    ] = SHARED_DATASETS / "reuters-qa",
    news_split: Annotated[
        str, typer.Option(help="reuters-qa split to ask: dev (report) or train.")
    ] = "dev",
    suite: Annotated[
        list[str] | None,
        typer.Option(help="Run only these suites: news, squad, selection (repeat; default all)."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="SQuAD test-article questions sampled (seeded).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 13,
    cache: Annotated[Path, typer.Option(help="Where built indexes are kept.")] = Path(
        ".lede/eval-cache"
    ),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write the reliability diagrams (PNG) here.")
    ] = None,
    answer_model: Annotated[
        Path | None,
        typer.Option(help="An answer model folder (`lede train answers --out`); default bundled."),
    ] = None,
) -> None:
    """News questions end to end over the whole Reuters corpus (answered right, precision,
    unanswerable answered, AUC, ECE), answer sentence and short answer on SQuAD's test articles
    (gold paragraph, end to end, article not indexed), and the scorer's MAP / MRR on WikiQA and
    TrecQA test."""
    from lede.eval.qa import SUITES, evaluate_qa
    from lede.eval.report import write_result

    suites = tuple(suite or SUITES)
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        typer.echo(f"error: --suite {unknown[0]!r} is not one of {', '.join(SUITES)}", err=True)
        raise typer.Exit(2)
    if news_split not in ("train", "dev"):
        typer.echo(f"error: --news-split is {news_split!r}; use dev or train", err=True)
        raise typer.Exit(2)
    needed = {
        "news": news / f"{news_split}.jsonl",
        "squad": squad / "qa" / "dev.jsonl",
        "selection": squad / "qa" / "dev.jsonl",
    }
    for name in suites:
        if not needed[name].exists():
            typer.echo(f"error: {needed[name]} not found (suite {name})", err=True)
            raise typer.Exit(2)
    results = evaluate_qa(
        squad,
        wikiqa,
        trecqa,
        limit=limit,
        seed=seed,
        cache=cache,
        plot=plot,
        news_dir=news,
        news_split=news_split,
        suites=suites,
        answer_model=answer_model,
    )
    config = {
        "suites": list(suites),
        "news": str(news),
        "news_split": news_split,
        "squad": str(squad),
        "squad_articles": "test",
        "wikiqa": str(wikiqa),
        "trecqa": str(trecqa),
        "limit": limit,
        "seed": seed,
        "answer_model": str(answer_model) if answer_model else "bundled",
    }
    write_result(json_out, "qa", config, results)


_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
train_app = typer.Typer(help="Build Lede's learned models from public data.", no_args_is_help=True)


@train_app.command("answers", context_settings=_PASS_THROUGH)
def train_answers_command(ctx: typer.Context) -> None:
    """Rebuild the answer model (scorer, reader, judge) from train and dev data (--help)."""
    from lede.eval.train.answers import main as train_main

    train_main(list(ctx.args))


bench_app = typer.Typer(
    help="Speed benchmarks (write JSON under eval/results/).", no_args_is_help=True
)


BENCHMARKS = {  # name: summary; `lede bench NAME` runs eval/bench/NAME.py
    "ann": "FAISS Flat / HNSW / IVF / PQ / SQ: recall@10 vs QPS, build time, memory (--help).",
    "bm25": "Lede's BM25 against rank-bm25 and bm25s: QPS and top-10 agreement (--help).",
    "indexer": "BM25 vs rank-bm25 at 100k chunks, one-article add, indexing throughput (--help).",
    "query": "In-process search p50 per mode on SciFact, with and without highlights (--help).",
    "service": "HTTP /search and /answer latency under concurrent clients vs in-process (--help).",
    "scale": "Hybrid query latency per stage at 5k, 100k and 1M chunks (--help).",
    "fuzz": "schemathesis against the service's OpenAPI schema: 5xx, schema, error shape (--help).",
    "load": "Mixed reads and writes at N clients for a duration: errors, latency, memory (--help).",
    "cluster": "One index vs shards in process, on a 2-node Ray cluster, via Serve (--help).",
    "memory": "RSS of `lede serve` with and without PyTorch, and of a Ray Serve replica (--help).",
}


def _register_benchmark(name: str, summary: str) -> None:
    """`lede bench NAME ARGS...` runs `python -m lede.eval.bench.NAME ARGS...`."""

    def command(ctx: typer.Context) -> None:
        importlib.import_module(f"lede.eval.bench.{name}").main(list(ctx.args))

    command.__doc__ = summary
    bench_app.command(name, context_settings=_PASS_THROUGH)(command)


for _name, _summary in BENCHMARKS.items():
    _register_benchmark(_name, _summary)


def register(app: typer.Typer) -> None:
    """Add `eval`, `train` and `bench` to the `lede` command (the `lede.commands` plugin)."""
    app.add_typer(eval_app, name="eval")
    app.add_typer(train_app, name="train")
    app.add_typer(bench_app, name="bench")
