"""Memory of a serving process: plain `lede serve`, with and without PyTorch, and a Ray Serve
replica, each on the sample index after it has answered searches and questions.

    python -m lede.eval.bench.memory [--requests 20] [--no-ray]
        [--json eval/results/bench_memory.json]

Each server is a real process (uvicorn, or a Serve replica on a local two-node Ray cluster) on
127.0.0.1. Its resident memory (VmRSS) and peak (VmHWM) are read from /proc after `--requests`
/search and /answer requests, and whether it loaded PyTorch from its memory maps. "torch" is
the same server with `LEDE_EMBED_BACKEND=torch` (the models in PyTorch), as a reference.
"""

from __future__ import annotations

import os

# Before anything imports Ray: every node and address on 127.0.0.1 (decision 41).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx

from lede.eval.local_server import SAMPLES, free_port, lede_serve, run_lede, wait_ready
from lede.eval.report import write_result

QUESTIONS = (
    "Who plays Ethan Hunt in Mission: Impossible 7?",
    "When does the ferry to Lantern Island leave?",
    "What did the central bank decide?",
    "How many people live in Harbor City?",
)
TARGET_MB = 400


def process_memory(pid: int) -> dict[str, Any]:
    """VmRSS and VmHWM of a process in MB, and which of PyTorch's, numba's (LLVM) and
    pyarrow's libraries are mapped in it."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {
        "rss_mb": fields["VmRSS"],
        "peak_rss_mb": fields["VmHWM"],
        "torch_loaded": "libtorch" in maps,
        "llvm_loaded": "libllvmlite" in maps,  # numba's compiler (decision 46)
        "pyarrow_loaded": "libarrow" in maps,
    }


def processes_titled(prefix: str) -> list[int]:
    """Processes of this machine whose title (Ray names each worker after its actor) starts
    with `prefix`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if title.startswith(prefix):
                found.append(int(entry.name))
    return sorted(found)


def exercise(base_url: str, requests: int) -> None:
    """`requests` searches and questions of every mode, so every model has run."""
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for i in range(requests):
            question = QUESTIONS[i % len(QUESTIONS)]
            mode = ("hybrid", "bm25", "dense")[i % 3]
            client.get("/search", params={"query": question, "mode": mode}).raise_for_status()
            client.post("/answer", json={"question": question}).raise_for_status()


def plain_serve(index: Path, requests: int, env: dict[str, str]) -> dict[str, Any]:
    with lede_serve(index, env=env) as (base_url, process):
        exercise(base_url, requests)
        return process_memory(process.pid)


def ray_replica(folder: Path, index: Path, requests: int) -> dict[str, Any]:
    """One Serve replica of the sharded index on a local two-node cluster: the replica's and
    each shard actor's memory."""
    from lede.eval.bench.cluster import local_cluster
    from lede.service.ray_serve import serve_on_ray
    from lede.service.settings import Settings

    with local_cluster(folder, serving=True):
        served = serve_on_ray(
            Settings(index=index),  # type: ignore[call-arg]
            replicas=1,
            port=free_port(),
        )
        try:
            wait_ready(served.url)
            exercise(served.url, requests)
            (replica,) = processes_titled("ray::ServeReplica")
            shards = processes_titled("ray::ShardActor")
            return {
                "replica": process_memory(replica),
                "shard_actors": [process_memory(pid) for pid in shards],
            }
        finally:
            served.stop()


def run(requests: int, with_ray: bool) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="lede-bench-memory-"))
    env = {"LEDE_CACHE_DIR": os.environ.get("LEDE_CACHE_DIR", "")}
    env = {key: value for key, value in env.items() if value}
    try:
        index = folder / "sample"
        done = run_lede("index", str(SAMPLES), "--index", str(index))
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        torch_env = {**env, "LEDE_EMBED_BACKEND": "torch"}
        results: dict[str, Any] = {
            "lede_serve": plain_serve(index, requests, env),
            "lede_serve_torch": plain_serve(index, requests, torch_env),
        }
        if with_ray:
            sharded = folder / "sample-sharded"
            done = run_lede("index", str(SAMPLES), "--index", str(sharded), "--shards", "2")
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
            results["ray_serve"] = ray_replica(folder, sharded, requests)
        light, heavy = results["lede_serve"]["rss_mb"], results["lede_serve_torch"]["rss_mb"]
        results["light_over_torch_rss"] = round(light / heavy, 2)
        results["target_mb"] = TARGET_MB
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--no-ray", action="store_true", help="Skip the Ray Serve replica.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    config = {"requests": args.requests, "ray": not args.no_ray}
    write_result(args.json, "memory", config, run(args.requests, not args.no_ray))


if __name__ == "__main__":
    main()
