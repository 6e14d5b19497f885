"""Two versions of Lede, one benchmark, alternated in one run: are they within noise?

    python -m lede.eval.ab BEFORE AFTER [--rounds 2] [--keep DIR] [--json FILE] \\
        -- bench_service --concurrency 1 --requests 60 --rounds 1

BEFORE and AFTER are git revisions of this repository. Each gets a worktree and a virtual
environment of its own that borrows this environment's installed packages (a `.pth` line) and
installs only that revision, so each runs its own code end to end, `lede serve` included.
Rounds alternate the order (before, after / after, before), so the machine's drift (10-30% from
hour to hour here) falls on both. The summary gives each timing's median over the rounds per
version and the ratio after / before; `--keep DIR` keeps the worktrees for a rerun.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from lede.eval.report import write_result

ROOT = Path(__file__).resolve().parent.parent
TIMING_KEYS = ("p50_ms", "p95_ms", "mean_ms", "_s", "per_s", "qps", "chunks_per_s")


def prepare(revision: str, folder: Path) -> Path:
    """A worktree of `revision` in `folder` with its own environment; returns its python."""
    repo = folder / "repo"
    if repo.exists():  # a kept worktree: move it to the revision asked for now
        git = ["git", "-C", str(repo), "checkout", "-q", "--detach", revision]
    else:
        git = ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(repo), revision]
    subprocess.run(git, check=True, capture_output=True)
    python = folder / "venv" / "bin" / "python"
    if not python.exists():
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True
        )
        target = Path(
            subprocess.check_output(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                text=True,
            ).strip()
        )
        (target / "lede_ab_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
        subprocess.run(
            [*pip, "--no-deps", "--no-build-isolation", "-e", str(repo)],
            check=True,
            capture_output=True,
        )
    return python


def module_name(repo: Path, bench: str) -> str:
    """The module of benchmark `bench_NAME` in that revision's layout.

    `lede.eval.bench.NAME` in family subpackages (decision 54), `lede.eval.bench_NAME` in the
    one-package layout (decision 37), `eval.bench_NAME` before it.
    """
    if (repo / "eval" / "bench").is_dir():
        return f"lede.eval.bench.{bench.removeprefix('bench_')}"
    one_package = '"lede.eval"' in (repo / "pyproject.toml").read_text()
    return f"lede.eval.{bench}" if one_package else f"eval.{bench}"


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON value, keyed by their path (list items by position)."""
    if isinstance(data, bool):
        return {}
    if isinstance(data, int | float):
        return {prefix: float(data)}
    items: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(str(i), v) for i, v in enumerate(data)]
    found: dict[str, float] = {}
    for key, value in items:
        found.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return found


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per timing key: each version's median over its rounds and the ratio after / before."""
    flat = {
        name: [flatten(run.get("results", run)) for run in found] for name, found in runs.items()
    }
    keys = set.intersection(*(set(run) for found in flat.values() for run in found))
    summary = {}
    for key in sorted(keys):
        if not key.endswith(TIMING_KEYS):
            continue
        before = statistics.median(run[key] for run in flat["before"])
        after = statistics.median(run[key] for run in flat["after"])
        summary[key] = {
            "before": round(before, 4),
            "after": round(after, 4),
            "after_over_before": round(after / before, 3) if before else float("nan"),
        }
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the worktrees here.")
    parser.add_argument("--json", type=Path, default=None)
    given = sys.argv[1:] if argv is None else argv
    if "--" not in given or given.index("--") == len(given) - 1:
        parser.error("name a benchmark after --, e.g. -- bench_service --requests 60")
    split = given.index("--")
    args = parser.parse_args(given[:split])
    bench = given[split + 1 :]
    work = args.keep or Path(tempfile.mkdtemp(prefix="lede-ab-"))
    versions = {  # commits, resolved here: "HEAD~1" in a kept worktree means its own HEAD
        name: subprocess.check_output(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", getattr(args, name)], text=True
        ).strip()
        for name in ("before", "after")
    }
    pythons = {name: prepare(revision, work / name) for name, revision in versions.items()}
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for number in range(args.rounds):
        order = ["before", "after"] if number % 2 == 0 else ["after", "before"]
        for name in order:
            repo = work / name / "repo"
            out = work / f"{name}-{number}.json"
            command = [str(pythons[name]), "-m", module_name(repo, bench[0]), *bench[1:]]
            print(f"round {number + 1}: {name} ({versions[name]})", flush=True)
            subprocess.run([*command, "--json", str(out)], cwd=repo, check=True)
            runs[name].append(json.loads(out.read_text()))
    summary = summarize(runs)
    config = {"benchmark": bench, "versions": versions, "rounds": args.rounds}
    write_result(args.json, "ab", config, {"summary": summary, "runs": runs})
    for key, row in summary.items():
        print(f"{key}: {row['before']} -> {row['after']} ({row['after_over_before']}x)")


if __name__ == "__main__":
    main()
