"""A load run: mixed searches, answers, reads and article updates at N concurrent clients.

    python -m lede.eval.bench.load --clients 16 --duration 600 --json eval/results/load.json
    (or: lede bench load ...)

Indexes the bundled sample articles plus `--versioned` articles into a temporary directory,
starts `lede serve` (a real uvicorn process, one worker) and runs N asyncio clients on
127.0.0.1 for the duration. Each client loops over a weighted mix: GET /search (45%),
POST /search (15%), POST /answer (15%), GET /articles/{id} (10%) and PUT /articles/{id}
(15%), where a PUT rewrites one of the versioned articles as a new version: several
passages, each naming the version number.

Reported: requests, errors (any non-2xx answer or failed request) and p50/p99 latency per
endpoint; the server's resident memory sampled every 5 s (first and last minute, peak); and
torn reads: a response that shows one versioned article with passages of two versions (a
half-applied write). Exits 1 on any error or torn read, or if memory grows more than
`--memory-bound-mb` between the first and the last minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from lede.eval.local_server import SAMPLES, index_with_lede, lede_serve
from lede.eval.report import percentiles, write_result

KEY = "load-key-0123456789abcdef"
QUERIES = [
    "interest rates inflation",
    "river cleanup volunteers",
    "who won the election",
    "harbour ferry timetable",
    "new vaccine trial results",
    "bridge repairs council budget",
]
QUESTIONS = [
    "What did the central bank decide about rates?",
    "How much rubbish did the volunteers collect?",
    "When will the bridge reopen?",
]
VERSION = re.compile(r"\bversion (\d+)\b")


def versioned_text(number: int, version: int) -> str:
    """Several passages' worth of text, every sentence naming the version."""
    sentences = [
        f"In version {version} the tide gauge {number} read {version % 9} metres at dawn "
        f"and the harbour master logged reading {j} of the morning shift."
        for j in range(40)
    ]
    return " ".join(sentences)


def _versions(texts: list[str]) -> set[int]:
    return {int(v) for text in texts for v in VERSION.findall(text)}


class Load:
    def __init__(self, base_url: str, versioned: int, seed: int):
        self.base_url = base_url
        self.versioned = versioned
        self.rng = random.Random(seed)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.torn: list[dict[str, Any]] = []
        self.next_version = [1] * versioned

    def _article(self) -> int:
        return self.rng.randrange(self.versioned)

    async def one(self, client: httpx.AsyncClient) -> None:
        roll = self.rng.random()
        if roll < 0.45:
            name, request = "GET /search", self._search_get()
        elif roll < 0.60:
            name, request = "POST /search", self._search_post()
        elif roll < 0.75:
            question = self.rng.choice(QUESTIONS)
            name, request = "POST /answer", ("POST", "/answer", {"json": {"question": question}})
        elif roll < 0.85:
            number = self._article()
            name, request = "GET /articles/{id}", ("GET", f"/articles/load-{number}", {})
        else:
            number = self._article()
            version = self.next_version[number]
            self.next_version[number] += 1
            body = {"title": f"Tide gauge {number}", "text": versioned_text(number, version)}
            name, request = (
                "PUT /articles/{id}",
                ("PUT", f"/articles/load-{number}", {"json": body}),
            )
        method, path, options = request
        started = time.perf_counter()
        try:
            response = await client.request(method, path, **options)
        except httpx.HTTPError as error:
            self.errors[name].append(f"{type(error).__name__}: {error}")
            return
        self.latencies[name].append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            self.errors[name].append(f"{response.status_code}: {response.text[:200]}")
            return
        self._check_torn(name, path, response.json())

    def _search_get(self) -> tuple[str, str, dict[str, Any]]:
        if self.rng.random() < 0.5:
            number = self._article()
            params = {"query": f"tide gauge {number} harbour", "article_id": f"load-{number}"}
            return "GET", "/search", {"params": {**params, "k": 20}}
        return "GET", "/search", {"params": {"query": self.rng.choice(QUERIES)}}

    def _search_post(self) -> tuple[str, str, dict[str, Any]]:
        number = self._article()
        body = {"query": f"harbour master reading {number}", "article_id": [f"load-{number}"]}
        return "POST", "/search", {"json": {**body, "k": 20, "mode": "bm25"}}

    def _check_torn(self, name: str, path: str, body: dict[str, Any]) -> None:
        """One response must never show two versions of one article."""
        if name == "GET /articles/{id}":
            text = body["text"]
            spans = [text[c["start"] : c["end"]] for c in body["chunks"]]
            aligned = all(s.startswith("In version") and s.endswith("shift.") for s in spans)
            if len(_versions([text])) > 1 or not aligned:
                self.torn.append({"endpoint": name, "path": path, "chunks_aligned": aligned})
            return
        by_article: dict[str, list[str]] = defaultdict(list)
        for hit in body.get("hits", body.get("passages", [])):
            if hit["article_id"].startswith("load-"):
                by_article[hit["article_id"]].append(hit["text"])
        for article_id, texts in by_article.items():
            seen = _versions(texts)
            if len(seen) > 1:
                self.torn.append(
                    {"endpoint": name, "article": article_id, "versions": sorted(seen)}
                )


async def _client(load: Load, deadline: float) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=load.base_url, headers=headers, timeout=60) as client:
        while time.monotonic() < deadline:
            await load.one(client)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _run(load: Load, clients: int, duration: float, pid: int) -> list[tuple[float, float]]:
    started = time.monotonic()
    deadline = started + duration
    memory: list[tuple[float, float]] = []

    async def sample() -> None:
        while time.monotonic() < deadline:
            memory.append((round(time.monotonic() - started, 1), round(_rss_mb(pid), 1)))
            await asyncio.sleep(5)

    await asyncio.gather(sample(), *(_client(load, deadline) for _ in range(clients)))
    return memory


def run(clients: int, duration: float, versioned: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Index, serve, warm up for 10 s, then load for `duration` s; the figures `main` writes."""
    index = workdir / "index"
    source = workdir / "versioned.jsonl"
    source.write_text(
        "".join(
            json.dumps(
                {"id": f"load-{n}", "title": f"Tide gauge {n}", "text": versioned_text(n, 0)}
            )
            + "\n"
            for n in range(versioned)
        )
    )
    index_with_lede(index, SAMPLES, source)
    with lede_serve(index, env={"LEDE_API_KEYS": KEY}) as (base_url, process):
        load = Load(base_url, versioned, seed)
        asyncio.run(_run(load, clients, min(duration, 10.0), process.pid))  # warm-up, not counted
        load.latencies.clear()
        load.errors.clear()
        started = time.perf_counter()
        memory = asyncio.run(_run(load, clients, duration, process.pid))
        elapsed = time.perf_counter() - started
    window = max(1, int(60 / 5))
    first = [rss for _, rss in memory[:window]]
    last = [rss for _, rss in memory[-window:]]
    endpoints = {
        name: {
            "requests": len(values) + len(load.errors.get(name, [])),
            "errors": len(load.errors.get(name, [])),
            **percentiles(values),
        }
        for name, values in sorted(load.latencies.items())
    }
    total = sum(e["requests"] for e in endpoints.values())
    return {
        "seconds": round(elapsed, 1),
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "errors": sum(len(v) for v in load.errors.values()),
        "error_samples": {name: values[:5] for name, values in load.errors.items()},
        "torn_reads": len(load.torn),
        "torn_samples": load.torn[:5],
        "endpoints": endpoints,
        "memory_mb": {
            "first_minute_mean": round(sum(first) / len(first), 1) if first else None,
            "last_minute_mean": round(sum(last) / len(last), 1) if last else None,
            "peak": max((rss for _, rss in memory), default=None),
            "growth": round(sum(last) / len(last) - sum(first) / len(first), 1) if first else None,
            "samples": memory,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=600.0, help="Seconds.")
    parser.add_argument("--versioned", type=int, default=20, help="Articles rewritten by PUTs.")
    parser.add_argument("--memory-bound-mb", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        result = run(args.clients, args.duration, args.versioned, args.seed, Path(directory))
    config = {
        "clients": args.clients,
        "duration_s": args.duration,
        "versioned": args.versioned,
        "memory_bound_mb": args.memory_bound_mb,
        "seed": args.seed,
    }
    write_result(args.json, "load", config, result)
    growth = result["memory_mb"]["growth"] or 0.0
    if result["errors"] or result["torn_reads"] or growth > args.memory_bound_mb:
        sys.exit(1)


if __name__ == "__main__":
    main()
