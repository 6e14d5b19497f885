"""Extractive answers with numbered citations, or an honest "not found"."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.filters import Filters
from indexer.sentences import sentence_spans
from service.answer_types import question_type, type_match
from service.engine import Hit, Mode, SearchEngine
from service.models_optional import SpanReader


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    """How answers are chosen.

    The sentence score is `similarity_weight * cosine(question, sentence)
    + overlap_weight * idf-weighted share of question terms in the sentence
    + passage_weight * passage score relative to the best passage
    + type_weight * (1 if the sentence holds the kind of answer asked for)`, squashed to [0, 1]
    by a logistic curve (`calibration_center`, `calibration_scale`). Below `threshold` the
    engine abstains and returns the best passages instead of a wrong answer.
    """

    passages: int = 5
    threshold: float = 0.5
    similarity_weight: float = 0.5
    overlap_weight: float = 0.25
    passage_weight: float = 0.1
    type_weight: float = 0.15
    calibration_center: float = 0.45
    calibration_scale: float = 0.08
    supporting: int = 2
    supporting_ratio: float = 0.9

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"answer threshold must be within [0, 1], got {self.threshold}")
        if self.passages < 1:
            raise ValueError(f"passages must be >= 1, got {self.passages}")
        if self.calibration_scale <= 0:
            raise ValueError("calibration_scale must be > 0")


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    hit: Hit
    start: int
    end: int
    quote: str

    def to_json(self) -> dict[str, Any]:
        record = self.hit.record
        return {
            "n": self.n,
            "article_id": record.article_id,
            "title": record.title,
            "url": record.url,
            "published_at": record.published_at,
            "chunk_id": record.chunk_id,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
        }


@dataclass(slots=True)
class Answer:
    answer: str | None
    confidence: float
    citations: list[Citation]
    passages: list[Hit]
    took_ms: float = 0.0

    @property
    def markdown(self) -> str:
        return render_markdown(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "confidence": round(self.confidence, 4),
            "citations": [c.to_json() for c in self.citations],
            "passages": [h.to_json() for h in self.passages],
            "markdown": self.markdown,
            "took_ms": round(self.took_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class _Sentence:
    hit: Hit
    rank: int
    start: int  # into the article
    end: int
    text: str


class Answerer:
    """Retrieve, score the sentences of the top passages, answer or abstain."""

    def __init__(
        self,
        engine: SearchEngine,
        settings: AnswerSettings | None = None,
        reader: SpanReader | None = None,
    ):
        self.engine = engine
        self.settings = settings or AnswerSettings()
        self.reader = reader

    def warm_up(self) -> None:
        self.engine.warm_up()
        if self.reader is not None:
            self.reader.warm_up()

    def ask(
        self,
        question: str,
        *,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        threshold: float | None = None,
    ) -> Answer:
        """Answer `question` from the index.

        Raises:
            ValueError: an empty question or a bad mode.
        """
        started = time.perf_counter()
        threshold = self.settings.threshold if threshold is None else threshold
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        query_vector = self.engine.embed_query(question) if question.strip() else None
        hits = self.engine.search(
            question,
            mode=mode,
            k=self.settings.passages,
            filters=filters,
            query_vector=query_vector,
        ).hits
        answer = self._answer(question, hits, query_vector, threshold)
        answer.took_ms = (time.perf_counter() - started) * 1000
        return answer

    def _answer(
        self, question: str, hits: list[Hit], query_vector: np.ndarray | None, threshold: float
    ) -> Answer:
        if not hits or query_vector is None:
            return Answer(None, 0.0, [], hits)
        sentences = _sentences(hits)
        if self.reader is not None:  # the reader picks the span; no sentence scoring needed
            return self._read(question, hits, sentences, threshold)
        best_score = hits[0].score if hits[0].score > 0 else 1.0
        priors = [max(0.0, s.hit.score / best_score) for s in sentences]
        raw = self._raw_scores(
            question,
            [s.text for s in sentences],
            query_vector,
            priors,
            contexts=[s.hit.record.title for s in sentences],
        )
        confidences = [self._calibrate(r) for r in raw]
        order = sorted(range(len(sentences)), key=lambda i: (-confidences[i], i))
        top = order[0]
        confidence = confidences[top]
        if confidence < threshold:
            return Answer(None, confidence, [], hits)
        best = sentences[top]
        citations = [Citation(1, best.hit, best.start, best.end, best.text)]
        cited_articles = {best.hit.record.article_id}
        for index in order[1:]:
            if len(citations) > self.settings.supporting:
                break
            candidate = sentences[index]
            if candidate.hit.record.article_id in cited_articles:
                continue
            if confidences[index] < max(threshold, confidence * self.settings.supporting_ratio):
                break
            cited_articles.add(candidate.hit.record.article_id)
            citations.append(
                Citation(
                    len(citations) + 1,
                    candidate.hit,
                    candidate.start,
                    candidate.end,
                    candidate.text,
                )
            )
        return Answer(best.text, confidence, citations, hits)

    def _read(
        self, question: str, hits: list[Hit], sentences: list[_Sentence], threshold: float
    ) -> Answer:
        assert self.reader is not None
        span = self.reader.best_span(question, [h.record.text for h in hits])
        if span is None or span.score < threshold:
            return Answer(None, 0.0 if span is None else span.score, [], hits)
        hit = hits[span.passage]
        start, end = hit.record.start + span.start, hit.record.start + span.end
        containing = next(
            (s for s in sentences if s.hit is hit and s.start <= start and end <= s.end), None
        )
        quote_start, quote_end = (containing.start, containing.end) if containing else (start, end)
        quote = hit.record.text[quote_start - hit.record.start : quote_end - hit.record.start]
        text = hit.record.text[span.start : span.end]
        return Answer(text, span.score, [Citation(1, hit, quote_start, quote_end, quote)], hits)

    def _raw_scores(
        self,
        question: str,
        sentences: list[str],
        query_vector: np.ndarray,
        priors: list[float],
        contexts: list[str] | None = None,
    ) -> list[float]:
        if not sentences:
            return []
        vectors = self.sentence_vectors(sentences, contexts)
        return self.raw_scores(question, sentences, vectors, query_vector, priors)

    def sentence_vectors(
        self, sentences: list[str], contexts: list[str] | None = None
    ) -> np.ndarray:
        """Embeddings of candidate sentences, each with its title as context.

        The title travels with each sentence, as it does with each chunk: "The film will open
        in November" only answers a question about the film its article is about.
        """
        inputs = [
            f"{context}\n{sentence}" if context else sentence
            for context, sentence in zip(contexts or [""] * len(sentences), sentences, strict=True)
        ]
        vectors: np.ndarray = self.engine.index.embedder.embed(inputs)
        return vectors

    def raw_scores(
        self,
        question: str,
        sentences: list[str],
        vectors: np.ndarray,
        query_vector: np.ndarray,
        priors: list[float],
    ) -> list[float]:
        """Uncalibrated sentence scores from precomputed sentence embeddings."""
        settings = self.settings
        similarity = (vectors @ query_vector[0]).astype(np.float64)
        overlap = self._overlap(question, sentences)
        asked = question_type(question)
        return [
            settings.similarity_weight * float(similarity[i])
            + settings.overlap_weight * overlap[i]
            + settings.passage_weight * priors[i]
            + settings.type_weight * type_match(asked, question, sentences[i])
            for i in range(len(sentences))
        ]

    def _overlap(self, question: str, sentences: list[str]) -> list[float]:
        index = self.engine.index
        analyze, lexical = index.analyzer, index.lexical
        weights = {}
        for term in set(analyze(question)):
            term_id = lexical.vocabulary.get(term)
            weights[term] = lexical.idf(term_id) if term_id is not None else 1.0
        total = sum(weights.values())
        if not total:
            return [0.0] * len(sentences)
        result = []
        for sentence in sentences:
            present = set(analyze(sentence))
            result.append(sum(w for t, w in weights.items() if t in present) / total)
        return result

    def calibrate(self, raw: float) -> float:
        """Map a raw sentence score to a confidence in [0, 1]."""
        return self._calibrate(raw)

    def _calibrate(self, raw: float) -> float:
        settings = self.settings
        return 1.0 / (
            1.0 + math.exp(-(raw - settings.calibration_center) / settings.calibration_scale)
        )


def _sentences(hits: list[Hit]) -> list[_Sentence]:
    """Sentences of the passages, each article span once (chunks overlap by a sentence)."""
    seen: set[tuple[str, int, int]] = set()
    result = []
    for rank, hit in enumerate(hits):
        record = hit.record
        for start, end in sentence_spans(record.text):
            key = (record.article_id, record.start + start, record.start + end)
            if key in seen:
                continue
            seen.add(key)
            result.append(_Sentence(hit, rank, key[1], key[2], record.text[start:end]))
    return result


def render_markdown(answer: Answer) -> str:
    """Chat-ready markdown: the answer with [n] markers and a numbered source list."""
    if answer.answer is None:
        lines = ["I could not find a confident answer in the indexed articles."]
        if answer.passages:
            lines += ["", "**Closest passages**"]
            for n, hit in enumerate(answer.passages[:3], start=1):
                snippet = " ".join(hit.record.text.split())
                snippet = snippet[:200] + ("…" if len(snippet) > 200 else "")
                lines.append(f"{n}. {_link(hit)}: {snippet}")
        return "\n".join(lines)
    markers = "".join(f"[{c.n}]" for c in answer.citations)
    lines = [f"{answer.answer} {markers}", "", "**Sources**"]
    for citation in answer.citations:
        lines.append(f"[{citation.n}] {_link(citation.hit)}: “{citation.quote}”")
    return "\n".join(lines)


def _link(hit: Hit) -> str:
    record = hit.record
    title = (record.title or record.article_id).replace("[", "(").replace("]", ")")
    label = f"[{title}]({record.url})" if record.url else title
    details = ", ".join(x for x in (record.source, (record.published_at or "")[:10]) if x)
    return f"{label} ({details})" if details else label
