"""BEIR-format datasets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

SHARED_DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


@dataclass(frozen=True, slots=True)
class BeirDataset:
    name: str
    path: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus(self) -> Path:
        return self.path / "corpus.jsonl"


def _qrels_file(path: Path, split: str) -> Path:
    for candidate in (path / "qrels" / f"{split}.tsv", path / "extras" / f"qrels_{split}.tsv"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{path} has no qrels for split {split!r} (qrels/{split}.tsv)")


def _queries_file(path: Path, split: str) -> Path:
    extra = path / "extras" / f"queries_{split}.jsonl"
    return extra if split != "test" and extra.exists() else path / "queries.jsonl"


def load_beir(path: Path, split: str = "test", *, max_queries: int | None = None) -> BeirDataset:
    """Judged queries and qrels of one split (queries without judgments are dropped).

    Raises:
        FileNotFoundError: the folder lacks corpus.jsonl, queries or qrels for the split.
    """
    path = Path(path)
    if not (path / "corpus.jsonl").exists():
        raise FileNotFoundError(f"{path} has no corpus.jsonl; expected a BEIR-format folder")
    qrels: dict[str, dict[str, int]] = {}
    with open(_qrels_file(path, split), newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if not row or row[0] == "query-id":
                continue
            query_id, doc_id, score = row[0], row[1], int(float(row[2]))
            if score > 0:
                qrels.setdefault(query_id, {})[doc_id] = score
    queries: dict[str, str] = {}
    with open(_queries_file(path, split)) as handle:
        for line in handle:
            if line.strip():
                data = json.loads(line)
                if str(data["_id"]) in qrels:
                    queries[str(data["_id"])] = str(data["text"])
    if max_queries is not None and len(queries) > max_queries:
        kept = set(random.Random(0).sample(sorted(queries), max_queries))
        queries = {q: text for q, text in queries.items() if q in kept}
    qrels = {q: docs for q, docs in qrels.items() if q in queries}
    return BeirDataset(path.name, path, queries, qrels)


def datasets_with_qrels(root: Path = SHARED_DATASETS) -> list[Path]:
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if (p / "qrels" / "test.tsv").exists())
