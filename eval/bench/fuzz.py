"""API fuzzing with schemathesis against the service's own OpenAPI schema.

    lede bench fuzz --examples 100 --json eval/results/fuzz.json

Indexes the bundled sample articles into a temporary directory, starts `lede serve` (a real
uvicorn process) with a write key, and runs `schemathesis run` with every check it has
(`--checks all`: no 5xx, responses match their documented schema, status codes and headers
documented, schema-invalid requests refused and schema-valid ones accepted) over every operation
and in all phases (examples, coverage, fuzzing, stateful sequences). Its HAR log is then read
back to count the requests and to check that every error response has Lede's one error shape
`{"error": {"code", "message", "details"}}`. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lede.eval.local_server import SAMPLES, index_with_lede, lede_serve
from lede.eval.report import write_result

KEY = "fuzz-key-0123456789abcdef"


def _error_shape_ok(text: str) -> bool:
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and set(body) == {"error"}
        and isinstance(body["error"], dict)
        and set(body["error"]) == {"code", "message", "details"}
        and isinstance(body["error"]["code"], str)
        and bool(body["error"]["message"])
    )


def read_har(path: Path) -> dict[str, Any]:
    """Requests, statuses, 5xx and error-shape violations recorded in a schemathesis HAR log."""
    entries = json.loads(path.read_text())["log"]["entries"]
    statuses: Counter[int] = Counter()
    bad_shapes = []
    for entry in entries:
        status = int(entry["response"]["status"])
        statuses[status] += 1
        text = entry["response"].get("content", {}).get("text", "")
        if status >= 400 and not _error_shape_ok(text):
            bad_shapes.append(
                {"status": status, "url": entry["request"]["url"], "body": text[:200]}
            )
    return {
        "requests": len(entries),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "error_shape_violations": bad_shapes,
    }


def run(examples: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Index the samples, serve them, fuzz; the figures `main` writes."""
    index = workdir / "index"
    index_with_lede(index, SAMPLES)
    har = workdir / "fuzz.har.json"
    started = time.perf_counter()
    with lede_serve(index, env={"LEDE_API_KEYS": KEY}, log=workdir / "server.log") as (url, _):
        completed = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--no-color",
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(examples),
                "--seed",
                str(seed),
                "--header",
                f"Authorization: Bearer {KEY}",
                "--request-timeout",
                "60",
                "--report",
                "har",
                "--report-har-path",
                str(har),
            ],
            capture_output=True,
            text=True,
            cwd=workdir,  # schemathesis keeps a cache directory in its working directory
        )
    summary = read_har(har) if har.exists() else {"requests": 0}
    failures = [
        line.strip()
        for line in completed.stdout.splitlines()
        if line.strip().startswith(("- ST", "❌ ST"))
    ]
    return {
        "schemathesis_exit_code": completed.returncode,
        "failures": failures,
        "seconds": round(time.perf_counter() - started, 1),
        **summary,
        "output_tail": completed.stdout[-3000:],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100, help="Examples per operation.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        result = run(args.examples, args.seed, Path(directory))
    tail = result.pop("output_tail")
    write_result(args.json, "fuzz", {"examples": args.examples, "seed": args.seed}, result)
    ok = result["schemathesis_exit_code"] == 0 and not result["error_shape_violations"]
    if not ok:
        print(tail, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
