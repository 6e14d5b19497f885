"""Service latency: /search and /answer over HTTP under concurrent clients, next to the
in-process engine time for the same queries.

    python -m lede.eval.bench.service --json eval/results/bench_service.json

Starts `lede serve` (one uvicorn worker) on 127.0.0.1 against an index of the sample
articles (or `--source` JSONL), warms it up, then for each concurrency level runs
`--requests` requests from that many asyncio clients. The in-process figures run the same
queries through `SearchEngine` / `Answerer` with the same number of threads. HTTP overhead
is reported two ways: HTTP p50 against the in-process p50 (separate runs, alternated in
rounds), and the paired transport time (client latency minus the server's own `took_ms` for
the same request) as a share of the engine time inside the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from lede.eval.local_server import lede_serve
from lede.eval.report import percentiles, write_result
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.sources import Skipped, read_source
from lede.service.answers.answerer import Answerer
from lede.service.engine import SearchEngine

ROOT = Path(__file__).resolve().parents[2]


async def _http_run(
    base_url: str, path: str, bodies: list[dict[str, Any]], concurrency: int, total: int
) -> tuple[list[float], list[float], float]:
    """Client-side latencies, the server's own `took_ms` per request, and requests/s."""
    latencies: list[float] = []
    server_ms: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            for number in counter:
                body = bodies[number % len(bodies)]
                started = time.perf_counter()
                response = await client.post(path, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")
                server_ms.append(float(response.json()["took_ms"]))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, server_ms, total / elapsed


def _engine_run(
    call: Any, queries: list[str], concurrency: int, total: int
) -> tuple[list[float], float]:
    def timed(number: int) -> float:
        started = time.perf_counter()
        call(queries[number % len(queries)])
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(timed, range(total)))
    return latencies, total / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=ROOT / "examples" / "articles.jsonl")
    parser.add_argument("--concurrency", default="1,4,8", help="Comma-separated client counts.")
    parser.add_argument("--requests", type=int, default=200, help="Requests per level/endpoint.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating in-process/HTTP rounds.")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    questions = [
        json.loads(line)["question"]
        for line in (ROOT / "examples" / "questions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    levels = [int(c) for c in args.concurrency.split(",")]
    embedder = SentenceTransformerEmbedder()
    embedder.warm_up()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        index_path = Path(directory) / "index"
        with LedeIndex.create(index_path, embedder=embedder) as index:
            index.add(item for item in read_source(args.source) if not isinstance(item, Skipped))
            figures["index"] = {k: v for k, v in index.stats().items() if k != "model"}
            engine = SearchEngine(index)
            answerer = Answerer(engine)
            in_process = {
                "search": lambda q: engine.search(q, k=10),
                "answer": lambda q: answerer.ask(q),
            }
            with lede_serve(index_path, port=args.port) as (base_url, _):
                bodies = {
                    "search": [{"query": q, "k": 10} for q in questions],
                    "answer": [{"question": q} for q in questions],
                }
                for name, call in in_process.items():  # warm both sides
                    for question in questions:
                        call(question)
                    asyncio.run(_http_run(base_url, f"/{name}", bodies[name], 1, len(questions)))
                for name, call in in_process.items():
                    rows = []
                    for level in levels:
                        pooled: dict[str, list[float]] = {"http": [], "server": [], "engine": []}
                        rates: dict[str, list[float]] = {"http": [], "engine": []}
                        per_round = max(1, args.requests // args.rounds)
                        for _ in range(args.rounds):  # alternate so drift hits both sides alike
                            engine_ms, engine_rate = _engine_run(call, questions, level, per_round)
                            http_ms, server_ms, http_rate = asyncio.run(
                                _http_run(base_url, f"/{name}", bodies[name], level, per_round)
                            )
                            pooled["engine"] += engine_ms
                            pooled["http"] += http_ms
                            pooled["server"] += server_ms
                            rates["engine"].append(engine_rate)
                            rates["http"].append(http_rate)
                        http, inner = percentiles(pooled["http"]), percentiles(pooled["engine"])
                        server_side = percentiles(pooled["server"])
                        transport = percentiles(
                            [h - s for h, s in zip(pooled["http"], pooled["server"], strict=True)]
                        )
                        rows.append(
                            {
                                "concurrency": level,
                                "http": {**http, "requests_per_s": round(min(rates["http"]), 1)},
                                "engine_in_process": {
                                    **inner,
                                    "requests_per_s": round(min(rates["engine"]), 1),
                                },
                                "engine_inside_server": server_side,
                                "http_transport": transport,
                                "overhead_vs_in_process_p50": round(
                                    (http["p50_ms"] - inner["p50_ms"]) / inner["p50_ms"], 3
                                ),
                                "transport_share_of_engine_p50": round(
                                    transport["p50_ms"] / server_side["p50_ms"], 3
                                ),
                            }
                        )
                    figures[name] = rows
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    write_result(args.json, "service", config, figures)


if __name__ == "__main__":
    main()
