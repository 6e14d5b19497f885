"""Extractive answers with numbered citations and a short answer, or an honest "not found"."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lede.indexer.filters import Filters
from lede.indexer.sentences import Span
from lede.indexer.text_analysis import Analyzer
from lede.service.answers.candidates import answer_sentences
from lede.service.answers.judge import Reading
from lede.service.answers.model import AnswerModel
from lede.service.answers.scoring import (
    MARGIN_CAP,
    SHORTLIST,
    PassageText,
    Scored,
    capped_margin,
    score_candidates,
)
from lede.service.answers.short_answers import short_answer
from lede.service.engine import Hit, Mode, SearchEngine
from lede.service.models_optional import SpanReader

_ANALYZE = Analyzer()


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    """How answers are chosen.

    Candidates (sentences, and pairs whose second sentence refers back) come from the top
    `passages` passages; the sentence scorer (`service.answer_model`) ranks the `shortlist` of
    them that share the most of the question's words, the span reader reads the best few in
    context and the judge scores them (`service.answer_judge`); the calibrated confidence of
    the best decides: below `threshold` (None: the threshold chosen on news questions, in the
    model's `scorer.json`) the answerer abstains and returns the best passages instead of a
    wrong answer.
    A citation from another article is added (up to `supporting`) only when that article's best
    candidate is itself confident and holds the same short answer, or most of the answer's words.
    """

    passages: int = 5
    threshold: float | None = None
    shortlist: int = SHORTLIST
    supporting: int = 2
    support_overlap: float = 0.6

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError(f"answer threshold must be within [0, 1], got {self.threshold}")
        if self.passages < 1:
            raise ValueError(f"passages must be >= 1, got {self.passages}")
        if self.shortlist < 1:
            raise ValueError(f"shortlist must be >= 1, got {self.shortlist}")


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


@dataclass(frozen=True, slots=True)
class AnswerSpan:
    """The short answer (a name, date, place or number) inside the cited sentence."""

    text: str
    start: int  # into the article text, like citations
    end: int

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end}


@dataclass(slots=True)
class Answer:
    answer: str | None
    confidence: float
    citations: list[Citation]
    passages: list[Hit]
    answer_span: AnswerSpan | None = None
    took_ms: float = 0.0

    @property
    def markdown(self) -> str:
        return render_markdown(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "answer_span": self.answer_span.to_json() if self.answer_span else None,
            "confidence": round(self.confidence, 4),
            "citations": [c.to_json() for c in self.citations],
            "passages": [h.to_json() for h in self.passages],
            "markdown": self.markdown,
            "took_ms": round(self.took_ms, 3),
        }


def retrieval_priors(hits: list[Hit]) -> list[float]:
    """Each passage's retrieval score relative to the best passage's (the ranking's prior)."""
    best = hits[0].score if hits[0].score > 0 else 1.0
    return [max(0.0, hit.score / best) for hit in hits]


def passage_texts(hits: list[Hit]) -> list[PassageText]:
    """The passages as the answer model reads them: title, text, sentences, retrieval prior."""
    return [
        PassageText(hit.record.title, hit.record.text, answer_sentences(hit.record.text), prior)
        for hit, prior in zip(hits, retrieval_priors(hits), strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Pick:
    """A candidate answer as it would be given: what it quotes and its short answer (both
    into its passage's text), and the confidence that it is right."""

    passage: int
    quote: Span
    span: Span | None
    confidence: float


def judge_picks(
    model: AnswerModel,
    question: str,
    passages: Sequence[PassageText],
    ranked: Sequence[Scored],
    overlapping: Callable[[Reading, Reading], bool],
) -> list[Pick]:
    """The best-ranked candidates read in context and judged (`AnswerModel.judge`), best first,
    each as it would be given. The best one's confidence reads its margin over the best rival
    that does not quote the same text; every other's is judged as if a rival scored as high
    (margin 0), so it must stand alone."""
    readings = model.judge(question, passages, ranked)
    picks = []
    for number, reading in enumerate(readings):
        over = 0.0
        if number == 0:
            rivals = [r.score for r in readings if not overlapping(reading, r)]
            over = capped_margin(reading.score - max(rivals)) if rivals else MARGIN_CAP
        span = short_answer_of(question, passages[reading.scored.passage].text, reading)
        picks.append(
            Pick(reading.scored.passage, reading.quote, span, model.confidence(reading.score, over))
        )
    return picks


def quotes_overlap(first: Reading, second: Reading) -> bool:
    """Whether two read candidates of the same passages quote shared text."""
    return (
        first.scored.passage == second.scored.passage
        and first.quote[0] < second.quote[1]
        and second.quote[0] < first.quote[1]
    )


def _overlapping(hits: list[Hit], first: Reading, second: Reading) -> bool:
    """Whether two read candidates quote shared article text."""
    a, b = hits[first.scored.passage].record, hits[second.scored.passage].record
    return (
        a.article_id == b.article_id
        and a.start + first.quote[0] < b.start + second.quote[1]
        and b.start + second.quote[0] < a.start + first.quote[1]
    )


def short_answer_of(question: str, text: str, reading: Reading) -> Span | None:
    """The short answer a read candidate gives (into its passage's `text`): the reader's span
    when it lies in the quote, else the pattern rules' inside the quote."""
    span, quote = reading.span, reading.quote
    if span is not None and quote[0] <= span[0] and span[1] <= quote[1]:
        return span
    return _rule_span(question, text, quote)


def _rule_span(question: str, text: str, quote: Span) -> Span | None:
    """The pattern rules' short answer inside `quote` (into `text`), or None."""
    found = short_answer(question, text[quote[0] : quote[1]])
    return (quote[0] + found[0], quote[0] + found[1]) if found else None


class Answerer:
    """Retrieve, rank the candidate answers of the top passages, read the best in context,
    judge them, answer or abstain."""

    def __init__(
        self,
        engine: SearchEngine,
        settings: AnswerSettings | None = None,
        reader: SpanReader | None = None,
        model: AnswerModel | None = None,
    ):
        self.engine = engine
        self.settings = settings or AnswerSettings()
        self.reader = reader
        self.model = model or AnswerModel(embedder=engine.index.embedder)

    @property
    def threshold(self) -> float:
        """The abstention threshold in use (the model's, chosen on dev data, unless set)."""
        if self.settings.threshold is not None:
            return self.settings.threshold
        return self.model.config.threshold

    def warm_up(self) -> None:
        self.engine.warm_up()
        if self.reader is not None:
            self.reader.warm_up()
        else:
            self.model.warm_up()

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
        threshold = self.threshold if threshold is None else threshold
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        hits = self.engine.search(
            question, mode=mode, k=self.settings.passages, filters=filters
        ).hits
        answer = self.answer_from(question, hits, threshold)
        answer.took_ms = (time.perf_counter() - started) * 1000
        return answer

    def answer_from(self, question: str, hits: list[Hit], threshold: float) -> Answer:
        """The answer to `question` from these passages (best first), or an abstention."""
        if not hits or not question.strip():
            return Answer(None, 0.0, [], hits)
        if self.reader is not None:  # the reader picks the span; no sentence scoring needed
            return self._read(question, hits, threshold)
        passages = passage_texts(hits)
        ranked = self.rank(question, hits, passages)
        if not ranked:
            return Answer(None, 0.0, [], hits)
        picks = self.picks(question, hits, passages, ranked)
        best = picks[0]
        if best.confidence < threshold:
            return Answer(None, best.confidence, [], hits)
        hit = hits[best.passage]
        offset = hit.record.start
        quote = hit.record.text[best.quote[0] : best.quote[1]]
        answer_span = (
            AnswerSpan(
                hit.record.text[best.span[0] : best.span[1]],
                offset + best.span[0],
                offset + best.span[1],
            )
            if best.span
            else None
        )
        citations = [Citation(1, hit, offset + best.quote[0], offset + best.quote[1], quote)]
        citations += self._supporting(question, hits, picks, quote, answer_span, threshold)
        return Answer(quote, best.confidence, citations, hits, answer_span)

    def picks(
        self,
        question: str,
        hits: list[Hit],
        passages: list[PassageText],
        ranked: list[Scored],
    ) -> list[Pick]:
        """The best candidate answers read and judged, best first (`judge_picks`)."""
        return judge_picks(
            self.model, question, passages, ranked, lambda a, b: _overlapping(hits, a, b)
        )

    def rank(
        self, question: str, hits: list[Hit], passages: list[PassageText] | None = None
    ) -> list[Scored]:
        """The shortlisted candidate answers of the passages, best first."""
        passages = passages if passages is not None else passage_texts(hits)
        ranked = score_candidates(self.model, question, passages, shortlist=self.settings.shortlist)
        # Chunks overlap by a sentence: keep each article span once.
        seen: set[tuple[str, int, int]] = set()
        unique = []
        for scored in ranked:
            record = hits[scored.passage].record
            key = (record.article_id, record.start + scored.start, record.start + scored.end)
            if key not in seen:
                seen.add(key)
                unique.append(scored)
        return unique

    def _supporting(
        self,
        question: str,
        hits: list[Hit],
        picks: list[Pick],
        answer: str,
        answer_span: AnswerSpan | None,
        threshold: float,
    ) -> list[Citation]:
        """Citations from other articles whose best candidate says the same thing."""
        cited = {hits[picks[0].passage].record.article_id}
        asked = set(_ANALYZE(question))
        answer_terms = set(_ANALYZE(answer)) - asked
        result: list[Citation] = []
        for pick in picks[1:]:
            if len(result) >= self.settings.supporting:
                break
            hit = hits[pick.passage]
            if hit.record.article_id in cited:
                continue
            cited.add(hit.record.article_id)  # only an article's best candidate may support
            # Judged as if a rival answer scored as high (margin 0): support must stand alone.
            if pick.confidence < threshold:
                continue
            quote = hit.record.text[pick.quote[0] : pick.quote[1]]
            if answer_span is not None:
                found = pick.span is not None and _same(
                    hit.record.text[pick.span[0] : pick.span[1]], answer_span.text
                )
            else:
                terms = set(_ANALYZE(quote)) - asked
                shared = len(terms & answer_terms) / max(1, len(answer_terms))
                found = bool(answer_terms) and shared >= self.settings.support_overlap
            if found:
                start = hit.record.start + pick.quote[0]
                result.append(Citation(len(result) + 2, hit, start, start + len(quote), quote))
        return result

    def _read(self, question: str, hits: list[Hit], threshold: float) -> Answer:
        assert self.reader is not None
        span = self.reader.best_span(question, [h.record.text for h in hits])
        if span is None or span.score < threshold:
            return Answer(None, 0.0 if span is None else span.score, [], hits)
        hit = hits[span.passage]
        start, end = hit.record.start + span.start, hit.record.start + span.end
        text = hit.record.text
        containing = next(
            ((s, e) for s, e in answer_sentences(text) if s <= span.start and span.end <= e),
            (span.start, span.end),
        )
        quote = text[containing[0] : containing[1]]
        offset = hit.record.start
        return Answer(
            text[span.start : span.end],
            span.score,
            [Citation(1, hit, offset + containing[0], offset + containing[1], quote)],
            hits,
            AnswerSpan(text[span.start : span.end], start, end),
        )


def _same(first: str, second: str) -> bool:
    """The same short answer, up to case, punctuation and articles."""
    return _squash(first) == _squash(second)


def _squash(text: str) -> str:
    words = [w for w in _ANALYZE(text) if w not in {"a", "an", "the"}]
    return " ".join(words)


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
    lead = f"**{answer.answer_span.text}**: " if answer.answer_span else ""
    lines = [f"{lead}{answer.answer} {markers}", "", "**Sources**"]
    for citation in answer.citations:
        lines.append(f"[{citation.n}] {_link(citation.hit)}: “{citation.quote}”")
    return "\n".join(lines)


def _link(hit: Hit) -> str:
    record = hit.record
    title = (record.title or record.article_id).replace("[", "(").replace("]", ")")
    label = f"[{title}]({record.url})" if record.url else title
    details = ", ".join(x for x in (record.source, (record.published_at or "")[:10]) if x)
    return f"{label} ({details})" if details else label
