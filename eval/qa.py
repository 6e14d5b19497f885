"""Answer quality: SQuAD v1.1 (answer-sentence accuracy, end-to-end with citations,
abstention, calibration) and WikiQA (MAP / MRR of the sentence scorer)."""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from eval.datasets import load_beir
from eval.relevance import DEFAULT_CACHE, RelevanceConfig, open_dataset_index
from indexer.index import LedeIndex
from indexer.sentences import sentence_spans
from service.answers import Answerer
from service.engine import SearchEngine


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _contains_answer(sentence: str, answers: list[str]) -> bool:
    normalized = _normalize(sentence)
    return any(_normalize(a) and _normalize(a) in normalized for a in answers)


def _normalize(text: str) -> str:
    """SQuAD's answer normalization: lowercase, no punctuation, articles or extra spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: list[str]) -> float:
    return float(any(_normalize(prediction) == _normalize(a) for a in answers))


def f1_score(prediction: str, answers: list[str]) -> float:
    best = 0.0
    predicted = _normalize(prediction).split()
    for answer in answers:
        gold = _normalize(answer).split()
        common = Counter(predicted) & Counter(gold)
        overlap = sum(common.values())
        if overlap:
            precision, recall = overlap / len(predicted), overlap / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def calibration(
    confidences: list[float], correct: list[bool], buckets: int = 10
) -> list[dict[str, Any]]:
    """Accuracy of answers per confidence bucket ([0, 0.1), ..., [0.9, 1])."""
    rows = []
    values = np.asarray(confidences)
    hits = np.asarray(correct, dtype=bool)
    for bucket in range(buckets):
        low, high = bucket / buckets, (bucket + 1) / buckets
        inside = (values >= low) & ((values < high) if bucket < buckets - 1 else (values <= high))
        count = int(inside.sum())
        rows.append(
            {
                "bucket": f"[{low:.1f}, {high:.1f}{']' if bucket == buckets - 1 else ')'}",
                "count": count,
                "accuracy": round(float(hits[inside].mean()), 4) if count else None,
            }
        )
    return rows


def threshold_table(confidences: list[float], correct: list[bool]) -> list[dict[str, float]]:
    """For each candidate threshold: share answered, and accuracy among answered."""
    values = np.asarray(confidences)
    hits = np.asarray(correct, dtype=bool)
    rows = []
    for threshold in np.round(np.arange(0.0, 1.0, 0.05), 2):
        answered = values >= threshold
        rows.append(
            {
                "threshold": float(threshold),
                "answered": round(float(answered.mean()), 4),
                "accuracy_when_answered": round(float(hits[answered].mean()), 4)
                if answered.any()
                else 0.0,
                "correct_overall": round(float((answered & hits).mean()), 4),
            }
        )
    return rows


def squad_sentence_accuracy(answerer: Answerer, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """(a) Given the gold paragraph, does the top-scored sentence contain a gold answer?"""
    vectors_by_context: dict[str, tuple[list[str], np.ndarray]] = {}
    correct: list[bool] = []
    confidences: list[float] = []
    for item in questions:
        context = item["context"]
        key = item.get("context_id") or context[:200]
        if key not in vectors_by_context:
            sentences = [context[s:e] for s, e in sentence_spans(context)]
            vectors_by_context[key] = (
                sentences,
                answerer.sentence_vectors(sentences, [item.get("title", "")] * len(sentences)),
            )
        sentences, vectors = vectors_by_context[key]
        query_vector = answerer.engine.embed_query(item["question"])
        raw = answerer.raw_scores(
            item["question"], sentences, vectors, query_vector, [1.0] * len(sentences)
        )
        best = int(np.argmax(raw))
        answers = [a["text"] for a in item["answers"]]
        correct.append(_contains_answer(sentences[best], answers))
        confidences.append(answerer.calibrate(raw[best]))
    return {
        "questions": len(questions),
        "answer_sentence_accuracy": round(float(np.mean(correct)), 4),
        "calibration": calibration(confidences, correct),
    }


def squad_end_to_end(answerer: Answerer, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """(b) Over all paragraphs indexed: answer contains a gold answer and cites the gold one."""
    correct: list[bool] = []
    confidences: list[float] = []
    abstained = 0
    cited_gold = 0
    latencies = []
    for item in questions:
        started = time.perf_counter()
        answer = answerer.ask(item["question"], threshold=0.0)
        latencies.append((time.perf_counter() - started) * 1000)
        answers = [a["text"] for a in item["answers"]]
        gold = item["context_id"]
        top = answer.citations[0] if answer.citations else None
        is_gold = top is not None and top.hit.record.article_id == gold
        cited_gold += int(is_gold)
        ok = top is not None and is_gold and _contains_answer(top.quote, answers)
        correct.append(ok)
        confidences.append(answer.confidence)
        if answer.confidence < answerer.settings.threshold:
            abstained += 1
    threshold = answerer.settings.threshold
    answered = [c >= threshold for c in confidences]
    answered_correct = [ok for ok, a in zip(correct, answered, strict=True) if a]
    return {
        "questions": len(questions),
        "accuracy_if_always_answering": round(float(np.mean(correct)), 4),
        "gold_paragraph_cited": round(cited_gold / len(questions), 4),
        "threshold": threshold,
        "abstention_rate": round(abstained / len(questions), 4),
        "accuracy_when_answered": round(float(np.mean(answered_correct)), 4)
        if answered_correct
        else 0.0,
        "calibration": calibration(confidences, correct),
        "thresholds": threshold_table(confidences, correct),
        "ask_p50_ms": round(float(np.percentile(latencies, 50)), 2),
    }


def wikiqa_ranking(answerer: Answerer, path: Path) -> dict[str, Any]:
    """MAP and MRR of the sentence scorer over each question's candidates (questions with at
    least one correct candidate, the standard WikiQA protocol)."""
    average_precisions = []
    reciprocal_ranks = []
    for item in _load_jsonl(path):
        labels = [int(c["label"]) for c in item["candidates"]]
        if not any(labels):
            continue
        sentences = [c["sentence"] for c in item["candidates"]]
        vectors = answerer.sentence_vectors(
            sentences, [item.get("document_title", "")] * len(sentences)
        )
        query_vector = answerer.engine.embed_query(item["question"])
        raw = answerer.raw_scores(
            item["question"], sentences, vectors, query_vector, [1.0] * len(sentences)
        )
        order = sorted(range(len(sentences)), key=lambda i: -raw[i])
        hits, precisions = 0, []
        first = 0.0
        for rank, index in enumerate(order, start=1):
            if labels[index]:
                hits += 1
                precisions.append(hits / rank)
                if not first:
                    first = 1.0 / rank
        average_precisions.append(float(np.mean(precisions)))
        reciprocal_ranks.append(first)
    return {
        "questions": len(average_precisions),
        "map": round(float(np.mean(average_precisions)), 4),
        "mrr": round(float(np.mean(reciprocal_ranks)), 4),
        "published_baseline": {"CNN-Cnt": {"map": 0.652, "mrr": 0.6652}},
    }


def evaluate_qa(
    squad_dir: Path,
    wikiqa_dir: Path | None,
    *,
    limit: int,
    seed: int = 13,
    cache: Path = DEFAULT_CACHE,
) -> dict[str, Any]:
    """Run all QA evaluations; SQuAD questions are a seeded sample of `limit`."""
    questions = _load_jsonl(squad_dir / "qa" / "dev.jsonl")
    sample = random.Random(seed).sample(questions, min(limit, len(questions)))
    dataset = load_beir(squad_dir)
    config = RelevanceConfig()
    index: LedeIndex
    index, build_s = open_dataset_index(dataset, config, cache)
    try:
        answerer = Answerer(SearchEngine(index))
        answerer.warm_up()
        results: dict[str, Any] = {
            "squad_sample": {
                "seed": seed,
                "questions": len(sample),
                "index_build_s": round(build_s, 1),
            },
            "squad_gold_paragraph": squad_sentence_accuracy(answerer, sample),
            "squad_end_to_end": squad_end_to_end(answerer, sample),
        }
        if wikiqa_dir is not None and (wikiqa_dir / "qa" / "test.jsonl").exists():
            results["wikiqa_test"] = wikiqa_ranking(answerer, wikiqa_dir / "qa" / "test.jsonl")
    finally:
        index.close()
    return results
