"""The dev end-to-end set behind `PRIOR_WEIGHT` and the similarity weight (decisions 31, 48).

    python -m lede.eval.answer_prior [--weights 0,4,10,15,20,30,50] [--similarity-weights 0,12]
        [--json eval/results/answer_prior_dev.json]

Indexes the WikiQA train + dev pages as articles (one per page, its sentences in order) under
`.lede/eval-cache/wikiqa-pages`, asks WikiQA dev's answerable questions, and reports for each
pair of weights (the bi-encoder similarity's and the prior's, each beside the cross-encoder's
logit) how often the top candidate is a correct sentence of the question's own page. Only train
and dev data are read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.datasets import SHARED_DATASETS
from lede.eval.relevance import DEFAULT_CACHE
from lede.eval.report import write_result
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import parse_article
from lede.service.answers.answerer import Answerer, retrieval_priors
from lede.service.answers.model import add_similarity, top_rows
from lede.service.engine import SearchEngine

Pages = dict[str, tuple[str, list[str]]]


def wikiqa_pages(root: Path, answerable: bool = True) -> tuple[Pages, list[dict[str, Any]]]:
    """WikiQA train + dev pages by id (title, sentences in order) and the dev questions
    (those with a correct sentence unless `answerable` is False)."""
    pages: Pages = {}
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
                )
                if split == "dev" and (any(c["label"] for c in ordered) or not answerable):
                    questions.append(item)
    return pages, questions


def correct_sentences(item: dict[str, Any]) -> list[str]:
    """The question's own correct sentences (its labels, not the page's: 39 dev questions
    share a page with another question)."""
    return [c["sentence"].strip() for c in item["candidates"] if int(c["label"])]


def pages_index(pages: Pages, path: Path) -> LedeIndex:
    """The index of these pages (one article each, its sentences in order), built once at
    `path` and opened from there afterwards."""
    embedder = SentenceTransformerEmbedder()
    if (path / "manifest.json").exists():
        return LedeIndex.open(path, embedder=embedder)
    index = LedeIndex.create(path, embedder=embedder)
    index.add(
        [
            parse_article({"id": page, "title": title, "text": " ".join(sentences)})
            for page, (title, sentences) in pages.items()
        ],
        batch_size=512,
    )
    return index


def prior_grid(
    weights: list[float],
    similarity_weights: list[float],
    cache: Path = DEFAULT_CACHE,
) -> dict[str, float]:
    pages, questions = wikiqa_pages(SHARED_DATASETS / "wikiqa" / "qa")
    index = pages_index(pages, cache / "wikiqa-pages")
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    with index:
        answerer = Answerer(SearchEngine(index))
        answerer.warm_up()
        for item in questions:
            hits = answerer.engine.search(item["question"], k=answerer.settings.passages).hits
            correct = correct_sentences(item)
            ranked = answerer.rank(item["question"], hits)
            if not ranked:
                continue
            texts = [hits[s.passage].record.text[s.start : s.end] for s in ranked]
            pairs = [(hits[s.passage].record.title, t) for s, t in zip(ranked, texts, strict=True)]
            holds = [
                hits[s.passage].record.article_id == item["document_id"]
                and any(c in text for c in correct)
                for s, text in zip(ranked, texts, strict=True)
            ]
            relative = retrieval_priors(hits)
            priors = [relative[s.passage] for s in ranked]
            rows.append(
                (
                    answerer.model.cross_logits(item["question"], pairs),
                    answerer.model.similarities(item["question"], pairs),
                    np.asarray(priors),
                    np.asarray(holds),
                )
            )
    figures = {}
    for similarity in similarity_weights:
        for weight in weights:
            picks = []
            for cross, cosine, prior, right in rows:
                top = top_rows(cross)  # scored as the service does (`AnswerModel.logits`)
                score = add_similarity(cross, top, cosine[top], similarity) + weight * prior
                picks.append(bool(right[int(np.argmax(score))]))
            accuracy = float(np.sum(picks)) / len(questions)  # no candidate: a wrong answer
            figures[f"similarity {similarity:g}, prior {weight:g}"] = round(accuracy, 4)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="0,4,10,15,20,30,50")
    parser.add_argument("--similarity-weights", default="0,12")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",")]
    similarity = [float(w) for w in args.similarity_weights.split(",")]
    figures = prior_grid(weights, similarity)
    print(json.dumps(figures, indent=2))
    write_result(args.json, "answer_prior_dev", vars(args) | {"json": str(args.json)}, figures)


if __name__ == "__main__":
    main()
