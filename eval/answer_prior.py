"""The dev end-to-end set behind `PRIOR_WEIGHT` (decision 31).

    python -m lede.eval.answer_prior [--weights 0,4,15,20,50]

Indexes the WikiQA train + dev pages as articles (one per page, its sentences in order) under
`.lede/eval-cache/wikiqa-pages`, asks WikiQA dev's answerable questions, and reports for each
prior weight how often the top candidate is a correct sentence of the question's own page.
Only train and dev data are read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.datasets import SHARED_DATASETS
from lede.eval.relevance import DEFAULT_CACHE
from lede.indexer.embedder import SentenceTransformerEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import parse_article
from lede.service.answers import Answerer
from lede.service.engine import SearchEngine


def _pages(root: Path) -> tuple[dict[str, tuple[str, list[str], list[int]]], list[dict[str, Any]]]:
    pages: dict[str, tuple[str, list[str], list[int]]] = {}
    questions = []
    for split in ("train", "dev"):
        with open(root / f"{split}.jsonl") as handle:
            for line in handle:
                item = json.loads(line)
                ordered = sorted(
                    item["candidates"], key=lambda c: int(c["sentence_id"].rsplit("-", 1)[1])
                )
                pages[item["document_id"]] = (
                    item["document_title"],
                    [c["sentence"] for c in ordered],
                    [int(c["label"]) for c in ordered],
                )
                if split == "dev" and any(c["label"] for c in ordered):
                    questions.append(item)
    return pages, questions


def prior_grid(weights: list[float], cache: Path = DEFAULT_CACHE) -> dict[str, float]:
    pages, questions = _pages(SHARED_DATASETS / "wikiqa" / "qa")
    path = cache / "wikiqa-pages"
    embedder = SentenceTransformerEmbedder()
    if (path / "manifest.json").exists():
        index = LedeIndex.open(path, embedder=embedder)
    else:
        index = LedeIndex.create(path, embedder=embedder)
        index.add(
            [
                parse_article({"id": page, "title": title, "text": " ".join(sentences)})
                for page, (title, sentences, _) in pages.items()
            ],
            batch_size=512,
        )
    rows: list[list[tuple[float, float, bool]]] = []
    with index:
        answerer = Answerer(SearchEngine(index))
        answerer.warm_up()
        for item in questions:
            hits = answerer.engine.search(item["question"], k=answerer.settings.passages).hits
            _, sentences, labels = pages[item["document_id"]]
            correct = [s.strip() for s, label in zip(sentences, labels, strict=True) if label]
            found = []
            for scored in answerer.rank(item["question"], hits):
                hit = hits[scored.passage]
                text = hit.record.text[scored.start : scored.end]
                right = hit.record.article_id == item["document_id"] and any(
                    c in text for c in correct
                )
                prior = max(0.0, hit.score / hits[0].score) if hits[0].score > 0 else 1.0
                found.append((scored.logit, prior, right))
            rows.append(found)
    return {
        str(weight): round(
            float(
                np.mean(
                    [max(r, key=lambda c: c[0] + weight * c[1])[2] if r else False for r in rows]
                )
            ),
            4,
        )
        for weight in weights
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="0,4,15,20,50")
    args = parser.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",")]
    print(json.dumps(prior_grid(weights), indent=2))


if __name__ == "__main__":
    main()
