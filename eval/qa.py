"""Answer quality on held-out data: SQuAD v1.1 dev's test articles (answer sentence,
short-answer span, end to end with citations, calibration, questions whose article is not
indexed), and the answer scorer's ranking on WikiQA test and TrecQA test (MAP / MRR). The news
suite (`reuters-qa` over the whole Reuters corpus) is `lede.eval.news_qa`."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lede.eval.answer_selection import load_selection, ranking_metrics, service_picks
from lede.eval.calibration import calibration, reliability_plot
from lede.eval.datasets import load_beir
from lede.eval.news_qa import (
    REUTERS_QA,
    evaluate_news,
    load_news_questions,
    open_reuters_index,
    story_texts,
    story_titles,
)
from lede.eval.relevance import DEFAULT_CACHE, RelevanceConfig, open_dataset_index
from lede.eval.spans import compare_news, compare_squad
from lede.eval.squad_metrics import exact_match, f1_score, normalize
from lede.indexer.filters import Filters
from lede.service.answers.answerer import Answerer, judge_picks, quotes_overlap
from lede.service.answers.candidates import answer_sentences
from lede.service.answers.model import AnswerModel
from lede.service.answers.question_types import question_type
from lede.service.answers.scoring import SHORTLIST, PassageText, score_candidates
from lede.service.engine import SearchEngine

CONFIDENT = 0.8


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def squad_questions(squad_dir: Path, part: str = "test") -> list[dict[str, Any]]:
    """SQuAD v1.1 dev questions of one part of `qa/split.json`: the `test` articles are for
    evaluation only, the `train` articles may be trained and tuned on."""
    articles = set(json.loads((squad_dir / "qa" / "split.json").read_text())[part])
    return [q for q in _load_jsonl(squad_dir / "qa" / "dev.jsonl") if q["title"] in articles]


def _contains_answer(sentence: str, answers: list[str]) -> bool:
    normalized = normalize(sentence)
    return any(normalize(a) and normalize(a) in normalized for a in answers)


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


def _confident(confidences: list[float], correct: list[bool]) -> dict[str, Any]:
    chosen = [ok for c, ok in zip(confidences, correct, strict=True) if c >= CONFIDENT]
    return {
        "answered": len(chosen),
        "accuracy": round(float(np.mean(chosen)), 4) if chosen else None,
    }


class _Spans:
    """SQuAD EM / F1 of the short answer over every question, and over the questions that ask
    for a typed answer (who / when / where / how many ...; the figure before the span reader);
    a missing span scores 0."""

    def __init__(self) -> None:
        self.rows: list[tuple[bool, bool, float, float]] = []  # typed, given, EM, F1

    def add(self, question: str, span: str | None, answers: list[str]) -> None:
        self.rows.append(
            (
                question_type(question) is not None,
                span is not None,
                exact_match(span or "", answers),
                f1_score(span or "", answers) if span else 0.0,
            )
        )

    def to_json(self) -> dict[str, Any]:
        typed = [row for row in self.rows if row[0]]

        def figures(rows: list[tuple[bool, bool, float, float]]) -> dict[str, float]:
            if not rows:
                return {"span_given": 0.0, "exact_match": 0.0, "f1": 0.0}
            return {
                "span_given": round(float(np.mean([r[1] for r in rows])), 4),
                "exact_match": round(float(np.mean([r[2] for r in rows])), 4),
                "f1": round(float(np.mean([r[3] for r in rows])), 4),
            }

        return {
            "typed_questions": len(typed),
            **figures(typed),
            "all_questions": {"questions": len(self.rows), **figures(self.rows)},
        }


def squad_gold_paragraph(
    model: AnswerModel, questions: list[dict[str, Any]], shortlist: int = SHORTLIST
) -> dict[str, Any]:
    """Given the gold paragraph alone, does the chosen answer hold a gold answer?"""
    correct: list[bool] = []
    confidences: list[float] = []
    spans = _Spans()
    for item in questions:
        context = item["context"]
        passage = PassageText(item.get("title", ""), context, answer_sentences(context))
        ranked = score_candidates(model, item["question"], [passage], shortlist=shortlist)
        picks = judge_picks(model, item["question"], [passage], ranked, quotes_overlap)
        answers = [a["text"] for a in item["answers"]]
        if not picks:
            correct.append(False)
            confidences.append(0.0)
            spans.add(item["question"], None, answers)
            continue
        best = picks[0]
        correct.append(_contains_answer(context[best.quote[0] : best.quote[1]], answers))
        confidences.append(best.confidence)
        spans.add(
            item["question"], context[best.span[0] : best.span[1]] if best.span else None, answers
        )
    return {
        "questions": len(questions),
        "answer_sentence_accuracy": round(float(np.mean(correct)), 4),
        "short_answer": spans.to_json(),
        "calibration": calibration(confidences, correct),
    }


def squad_end_to_end(
    answerer: Answerer, questions: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[float], list[bool]]:
    """Over all paragraphs indexed: the answer holds a gold answer and cites the gold one."""
    correct: list[bool] = []
    confidences: list[float] = []
    cited_gold = 0
    latencies = []
    spans = _Spans()
    for item in questions:
        started = time.perf_counter()
        answer = answerer.ask(item["question"], threshold=0.0)
        latencies.append((time.perf_counter() - started) * 1000)
        answers = [a["text"] for a in item["answers"]]
        top = answer.citations[0] if answer.citations else None
        is_gold = top is not None and top.hit.record.article_id == item["context_id"]
        cited_gold += int(is_gold)
        ok = top is not None and is_gold and _contains_answer(top.quote, answers)
        correct.append(ok)
        confidences.append(answer.confidence)
        span = answer.answer_span.text if answer.answer_span and is_gold else None
        spans.add(item["question"], span, answers)
    threshold = answerer.threshold
    answered = [c >= threshold for c in confidences]
    answered_correct = [ok for ok, a in zip(correct, answered, strict=True) if a]
    result = {
        "questions": len(questions),
        "accuracy_if_always_answering": round(float(np.mean(correct)), 4),
        "gold_paragraph_cited": round(cited_gold / len(questions), 4),
        "short_answer": spans.to_json(),
        "threshold": threshold,
        "abstention_rate": round(1 - float(np.mean(answered)), 4),
        "accuracy_when_answered": round(float(np.mean(answered_correct)), 4)
        if answered_correct
        else 0.0,
        "confident": {"threshold": CONFIDENT, **_confident(confidences, correct)},
        "calibration": calibration(confidences, correct),
        "thresholds": threshold_table(confidences, correct),
        "ask_p50_ms": round(float(np.percentile(latencies, 50)), 2),
    }
    return result, confidences, correct


def squad_not_indexed(
    answerer: Answerer, questions: list[dict[str, Any]], titles: dict[str, str]
) -> dict[str, Any]:
    """Each question asked of the index without any paragraph of its Wikipedia article (an
    article-id filter, applied inside both retrievers): any answer given is wrong."""
    by_title: dict[str, list[str]] = {}
    for paragraph, title in titles.items():
        by_title.setdefault(title, []).append(paragraph)
    answered = 0
    confidences = []
    for item in questions:
        title = titles.get(item["context_id"], "")
        others = tuple(p for t, ids in by_title.items() if t != title for p in ids)
        answer = answerer.ask(item["question"], filters=Filters(article_ids=others))
        answered += answer.answer is not None
        confidences.append(answer.confidence)
    return {
        "questions": len(questions),
        "threshold": answerer.threshold,
        "answered_anyway": round(answered / len(questions), 4),
        "mean_confidence": round(float(np.mean(confidences)), 4),
    }


def selection_ranking(
    answerer: Answerer, path: Path
) -> tuple[dict[str, Any], list[float], list[bool]]:
    """MAP / MRR of the answer scorer over each question's candidates (all of them: the
    standard protocol), and the calibration of the service's pick on every question."""
    questions = load_selection(path)
    model = answerer.model
    ranking = ranking_metrics(
        questions,
        lambda q: model.logits(q.question, [(q.title, s) for s in q.sentences]).tolist(),
    )
    confidences, correct = service_picks(model, questions)
    return (
        {
            **ranking,
            "all_questions": len(questions),
            "pick_accuracy": round(float(np.mean(correct)), 4),
            "calibration": calibration(confidences, correct),
        },
        confidences,
        correct,
    )


def qa_slice(squad_dir: Path, wikiqa_dir: Path, trecqa_dir: Path, *, limit: int) -> dict[str, Any]:
    """The figures CI guards (no index needed): the answer sentence and short answer with the
    gold paragraph on a seeded SQuAD slice, and MAP / MRR on WikiQA and TrecQA test."""
    questions = squad_questions(squad_dir)
    sample = random.Random(13).sample(questions, min(limit, len(questions)))
    model = AnswerModel()
    gold = squad_gold_paragraph(model, sample)
    result: dict[str, Any] = {
        "squad_gold_paragraph": {
            "answer_sentence_accuracy": gold["answer_sentence_accuracy"],
            "span_f1": gold["short_answer"]["f1"],
        }
    }
    for name, folder in (("wikiqa_test", wikiqa_dir), ("trecqa_test", trecqa_dir)):
        ranking = ranking_metrics(
            load_selection(folder / "qa" / "test.jsonl"),
            lambda q: model.logits(q.question, [(q.title, s) for s in q.sentences]).tolist(),
        )
        result[name] = {"map": ranking["map"], "mrr": ranking["mrr"]}
    return result


SUITES = ("news", "squad", "selection")


def evaluate_qa(
    squad_dir: Path,
    wikiqa_dir: Path | None,
    trecqa_dir: Path | None = None,
    *,
    limit: int,
    seed: int = 13,
    cache: Path = DEFAULT_CACHE,
    plot: Path | None = None,
    news_dir: Path | None = REUTERS_QA,
    news_split: str = "dev",
    suites: Sequence[str] = SUITES,
    answer_model: Path | None = None,
) -> dict[str, Any]:
    """Run the QA evaluations named in `suites`: `news` (reuters-qa `news_split` over the whole
    Reuters index), `squad` (a seeded sample of `limit` questions of the SQuAD test articles,
    every paragraph of the 48 articles indexed) and `selection` (WikiQA / TrecQA test ranking),
    with the answer model in `answer_model` (default: the bundled one)."""
    results: dict[str, Any] = {}
    curves: dict[str, tuple[list[float], list[bool], float]] = {}
    if "news" in suites and news_dir is not None:
        index, build_s = open_reuters_index(cache)
        try:
            answerer = Answerer(SearchEngine(index), model=AnswerModel(answer_model))
            answerer.warm_up()
            questions = load_news_questions(news_dir / f"{news_split}.jsonl")
            texts = story_texts()
            report, judged = evaluate_news(answerer, questions, texts)
            results[f"news_{news_split}"] = {"index_build_s": round(build_s, 1), **report}
            if answerer.model.reader is not None:
                results[f"news_{news_split}"]["short_answer_given_the_sentence"] = compare_news(
                    answerer.model.reader, questions, texts, story_titles()
                )
            curves[f"Reuters-QA {news_split}, end to end"] = (
                [j.confidence for j in judged],
                [j.right for j in judged],
                report["ece"],
            )
        finally:
            index.close()
    if "squad" in suites or "selection" in suites:
        index, build_s = open_dataset_index(load_beir(squad_dir), RelevanceConfig(), cache)
        try:
            answerer = Answerer(SearchEngine(index), model=AnswerModel(answer_model))
            answerer.warm_up()
            results["answer_model"] = {
                "threshold": answerer.threshold,
                "calibration": answerer.model.config.to_json()["calibration"],
            }
            if "squad" in suites:
                results.update(_squad(answerer, squad_dir, limit, seed, build_s, curves))
            if "selection" in suites:
                for name, folder, label in (
                    ("wikiqa_test", wikiqa_dir, "WikiQA test"),
                    ("trecqa_test", trecqa_dir, "TrecQA test (clean)"),
                ):
                    if folder is None or not (folder / "qa" / "test.jsonl").exists():
                        continue
                    ranking, picked, right = selection_ranking(
                        answerer, folder / "qa" / "test.jsonl"
                    )
                    results[name] = ranking
                    curves[f"{label}, best candidate"] = (
                        picked,
                        right,
                        ranking["calibration"]["ece"],
                    )
        finally:
            index.close()
    if plot is not None and curves:
        reliability_plot(plot, curves)
    return results


def _squad(
    answerer: Answerer,
    squad_dir: Path,
    limit: int,
    seed: int,
    build_s: float,
    curves: dict[str, tuple[list[float], list[bool], float]],
) -> dict[str, Any]:
    questions = squad_questions(squad_dir)
    sample = random.Random(seed).sample(questions, min(limit, len(questions)))
    titles = {
        item["context_id"]: item.get("title", "")
        for item in _load_jsonl(squad_dir / "qa" / "dev.jsonl")
    }
    end_to_end, confidences, correct = squad_end_to_end(answerer, sample)
    if answerer.model.reader is not None:
        end_to_end["short_answer_given_the_sentence"] = compare_squad(answerer.model.reader, sample)
    curves["SQuAD test articles, end to end"] = (
        confidences,
        correct,
        end_to_end["calibration"]["ece"],
    )
    return {
        "squad_sample": {
            "articles": "test",
            "seed": seed,
            "questions": len(sample),
            "index_build_s": round(build_s, 1),
        },
        "squad_gold_paragraph": squad_gold_paragraph(
            answerer.model, sample, answerer.settings.shortlist
        ),
        "squad_end_to_end": end_to_end,
        "squad_not_indexed": squad_not_indexed(answerer, sample, titles),
    }
