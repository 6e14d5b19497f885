"""Indexer benchmark: BM25 query speed vs rank-bm25, one-article add time, and indexing
throughput vs bare `SentenceTransformer.encode`.

    python -m lede.eval.bench.indexer --json eval/results/bench_indexer.json

Corpus: documents of 120 words drawn from the word frequencies of Reuters-21578 (read from
../shared/datasets when present, otherwise from examples/). The 100k-chunk index is built
through the normal write path with the model-free `HashingEmbedder` (384-d), because
embedding 100k chunks with MiniLM on 2 CPU cores takes over 10 minutes and is not what
these two figures measure; the one-article add is also reported with the real model's
embedding time for that article added. Throughput uses real Reuters articles and the
real bundled model.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.lucene_bm25 import LuceneBM25
from lede.eval.report import write_result
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import Article, parse_article
from lede.indexer.views.bm25 import BM25View

ROOT = Path(__file__).resolve().parents[2]
REUTERS = ROOT.parent / "shared" / "datasets" / "reuters21578" / "corpus.jsonl"


def _real_articles(limit: int) -> list[Article]:
    path = REUTERS if REUTERS.exists() else ROOT / "examples" / "articles.jsonl"
    articles = []
    with open(path) as handle:
        for line in handle:
            data = json.loads(line)
            try:
                articles.append(parse_article(data))
            except Exception:
                continue
            if len(articles) >= limit:
                break
    return articles


def reuters_vocabulary() -> tuple[list[str], np.ndarray]:
    """The 20,000 commonest words of 5,000 Reuters articles and their frequencies (sum 1)."""
    counts: Counter[str] = Counter()
    for article in _real_articles(5000):
        counts.update(w for w in article.text.lower().split() if w.isalpha())
    vocabulary = [w for w, _ in counts.most_common(20000)]
    weights = np.array([counts[w] for w in vocabulary], dtype=np.float64)
    return vocabulary, weights / weights.sum()


def _synthetic(documents: int, words: int, seed: int) -> tuple[list[Article], list[str]]:
    vocabulary, weights = reuters_vocabulary()
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(vocabulary), size=(documents, words), p=weights)
    articles = [
        Article(id=f"doc-{i}", text=" ".join(vocabulary[j] for j in row) + ".")
        for i, row in enumerate(indices)
    ]
    mid = vocabulary[50:3000]
    picker = random.Random(seed)
    queries = [" ".join(picker.sample(mid, picker.randint(2, 5))) for _ in range(200)]
    return articles, queries


def bench_bm25(
    index: LedeIndex, articles: list[Article], queries: list[str], reference_queries: int
) -> dict[str, Any]:
    lexical = index.view("bm25", BM25View).lexical
    for query in queries[:10]:
        lexical.search(query, 10)
    started = time.perf_counter()
    for query in queries:
        lexical.search(query, 10)
    lede_ms = (time.perf_counter() - started) * 1000 / len(queries)

    analyzer = index.analyzer
    rowid_of = {r.article_id: r.rowid for r in index.store.all_chunk_records()}
    ordered = [a for a in articles if a.id in rowid_of]
    build = time.perf_counter()
    settings = lexical.settings
    reference = LuceneBM25([analyzer(a.text) for a in ordered], k1=settings.k1, b=settings.b)
    build_s = time.perf_counter() - build
    agree = 0
    started = time.perf_counter()
    for query in queries[:reference_queries]:
        scores = reference.get_scores(analyzer(query))
        top = np.argsort(-scores, kind="stable")[:10]
        expected = {rowid_of[ordered[i].id]: float(scores[i]) for i in top if scores[i] > 0}
        ids, found = lexical.search(query, 10)
        got = dict(zip(ids.tolist(), found.astype(float).tolist(), strict=True))
        want, have = sorted(expected.values()), sorted(got.values())
        agree += int(
            len(want) == len(have)
            and all(math.isclose(a, b, rel_tol=1e-4) for a, b in zip(want, have, strict=True))
        )
    reference_ms = (time.perf_counter() - started) * 1000 / reference_queries
    return {
        "documents": lexical.doc_count,
        "lede_ms_per_query": round(lede_ms, 3),
        "rank_bm25_ms_per_query": round(reference_ms, 3),
        "speedup": round(reference_ms / lede_ms, 1),
        "rank_bm25_build_s": round(build_s, 2),
        "top10_score_agreement": f"{agree}/{reference_queries}",
    }


def bench_add_one(index: LedeIndex, real: SentenceTransformerEmbedder) -> dict[str, Any]:
    article = _real_articles(1)[0]
    times = []
    for attempt in range(5):
        copy = article.model_copy(update={"id": f"added-{attempt}"})
        started = time.perf_counter()
        index.add([copy])
        times.append((time.perf_counter() - started) * 1000)
    inputs = [f"{article.title}\n{article.text}"]
    real.embed(inputs)
    started = time.perf_counter()
    for _ in range(5):
        real.embed(inputs)
    embed_ms = (time.perf_counter() - started) * 1000 / 5
    write_ms = float(np.median(times))
    files = sorted(p.name for p in index.path.iterdir())
    return {
        "write_path_ms_median": round(write_ms, 2),
        "real_model_embed_ms": round(embed_ms, 2),
        "estimated_total_with_real_model_ms": round(write_ms + embed_ms, 2),
        "view_files_rewritten": index.checkpoint_due(),
        "files_after": files,
    }


def bench_throughput(real: SentenceTransformerEmbedder, articles: list[Article]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        index = LedeIndex.create(Path(directory) / "index", embedder=real)
        started = time.perf_counter()
        report = index.add(articles)
        pipeline_s = time.perf_counter() - started
        records = list(index.store.all_chunk_records())
        index.close()
    titles = {a.id: a.title for a in articles}
    inputs = [
        f"{titles[r.article_id]}\n{r.text}" if titles[r.article_id] else r.text for r in records
    ]
    model = real.model
    started = time.perf_counter()
    model.encode(inputs, batch_size=64, normalize_embeddings=True)  # type: ignore[attr-defined]
    bare_s = time.perf_counter() - started
    return {
        "articles": len(articles),
        "chunks": report.chunks,
        "pipeline_s": round(pipeline_s, 2),
        "bare_encode_s": round(bare_s, 2),
        "pipeline_chunks_per_s": round(report.chunks / pipeline_s, 1),
        "bare_chunks_per_s": round(len(inputs) / bare_s, 1),
        "ratio_of_bare": round(bare_s / pipeline_s, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=120)
    parser.add_argument("--reference-queries", type=int, default=20)
    parser.add_argument("--throughput-articles", type=int, default=600)
    parser.add_argument("--json", type=Path, default=None, help="Write the result here.")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    real = SentenceTransformerEmbedder()
    real.warm_up()
    articles, queries = _synthetic(args.documents, args.words, seed=7)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        embedder = HashingEmbedder(dimension=384, max_tokens=254)
        started = time.perf_counter()
        index = LedeIndex.create(Path(directory) / "index", embedder=embedder)
        index.add(articles, batch_size=2000)
        figures["build_100k"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "chunks": index.store.counts()["chunks"],
        }
        figures["bm25"] = bench_bm25(index, articles, queries, args.reference_queries)
        figures["add_one_article"] = bench_add_one(index, real)
        index.close()
    figures["throughput"] = bench_throughput(real, _real_articles(args.throughput_articles))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    write_result(args.json, "indexer", config, figures)


if __name__ == "__main__":
    main()
