"""BEIR-format datasets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

SHARED_DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
VIEWS = Path(".lede") / "eval-cache" / "views"


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


def answer_selection_view(path: Path, split: str, views: Path = VIEWS) -> Path:
    """A BEIR folder for one split of an answer-sentence-selection dataset (WikiQA's layout).

    WikiQA's BEIR files cover its test split only; its train and dev splits exist as
    `qa/<split>.jsonl` (a question, its page's candidate sentences, a 0/1 label each). The view
    has the split's distinct sentences as the corpus (title = page title), the questions with at
    least one correct sentence as queries, and the correct pairs as qrels, as the test view
    does. It is written under `views` (never into the shared dataset), in a folder named after
    the source file's content, and reused while that content is unchanged.
    """
    source = path / "qa" / f"{split}.jsonl"
    with source.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()[:12]
    out = views / f"{path.name}-{split}-{digest}"
    if (out / "qrels" / f"{split}.tsv").exists():
        return out
    corpus: dict[str, dict[str, object]] = {}
    queries: dict[str, str] = {}
    qrels: list[tuple[str, str]] = []
    with source.open() as handle:
        for number, line in enumerate(handle, 1):
            question = json.loads(line)
            if "candidates" not in question:
                raise ValueError(
                    f"{source}:{number}: no 'candidates'; not an answer-selection file"
                )
            for candidate in question["candidates"]:
                corpus.setdefault(
                    candidate["sentence_id"],
                    {
                        "_id": candidate["sentence_id"],
                        "title": question["document_title"],
                        "text": candidate["sentence"],
                        "metadata": {"document_id": question["document_id"]},
                    },
                )
                if candidate["label"]:
                    queries[question["question_id"]] = question["question"]
                    qrels.append((question["question_id"], candidate["sentence_id"]))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w") as handle:
        handle.writelines(json.dumps(doc) + "\n" for doc in corpus.values())
    with (out / "queries.jsonl").open("w") as handle:
        handle.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    rows = "".join(f"{q}\t{doc}\t1\n" for q, doc in qrels)
    (out / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return out


def _queries_file(path: Path, split: str) -> Path:
    extra = path / "extras" / f"queries_{split}.jsonl"
    return extra if split != "test" and extra.exists() else path / "queries.jsonl"


def load_beir(
    path: Path, split: str = "test", *, max_queries: int | None = None, views: Path = VIEWS
) -> BeirDataset:
    """Judged queries and qrels of one split (queries without judgments are dropped).

    Raises:
        FileNotFoundError: the folder lacks corpus.jsonl, queries or qrels for the split.
    """
    path = Path(path)
    name = path.name
    if split != "test" and (path / "qa" / f"{split}.jsonl").exists():
        name = f"{path.name}-{split}"
        path = answer_selection_view(path, split, views)
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
    return BeirDataset(name, path, queries, qrels)


def datasets_with_qrels(root: Path = SHARED_DATASETS) -> list[Path]:
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if (p / "qrels" / "test.tsv").exists())
