"""The final pick and its confidence: the best candidates read in context, then judged.

The sentence scorer ranks every shortlisted candidate (`scoring`); the span reader then
reads the `top` best of them, each in its window (`reader`), and finds the words that
answer the question there, or says none do. A logistic model over what is known of each read
candidate (`FEATURES`: the ranking score, the reader's span-over-null evidence and span score,
whether the span sits in the candidate or in a neighbouring sentence, whether it is of the kind
the question asks for, and how much of the question the window and title mention) gives each a
score; the best is the answer, and the confidence is the calibrated probability that it is right,
from its score and its margin over the runner-up. The weights and the calibration are fitted on
news questions (`lede train answers`), and the answer quotes the sentence that holds the span
(with the sentence before it when it refers back), not the whole window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lede.indexer.sentences import Span
from lede.indexer.text_analysis import Analyzer
from lede.service.answers.candidates import candidates
from lede.service.answers.question_types import question_type
from lede.service.answers.reader import ReadSpan, window
from lede.service.answers.scoring import PassageText, Scored

FEATURES = (
    "rank_score",  # the sentence scorer's logit + similarity + retrieval prior (`Scored`)
    "evidence",  # the reader's best span score minus its "no answer here" score
    "span_score",  # the reader's best span score
    "in_candidate",  # 1 when the span lies in the candidate, 0 in a neighbouring sentence
    "kind_match",  # 1 when the span is of the kind asked for (or nothing particular is asked)
    "coverage",  # share of the question's terms that the title and the window mention
)
_ANALYZE = Analyzer()
_DIGIT = re.compile(r"\d")
_NUMBER_WORD = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    r"fifty|hundred|thousand|million|billion|mln|bln|dozen|half|quarter)\b",
    re.I,
)
_MONTH = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\b|\b(1[5-9]|20)\d\d\b", re.I
)


@dataclass(frozen=True, slots=True)
class Combiner:
    """A linear score over `FEATURES` (fitted as a logistic regression of "this read candidate
    is a right answer")."""

    weights: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    intercept: float = 0.0
    names: tuple[str, ...] = FEATURES

    def __post_init__(self) -> None:
        if self.names != FEATURES or len(self.weights) != len(FEATURES):
            raise ValueError(
                f"the answer judge reads the features {FEATURES}; this model was fitted on "
                f"{self.names}: rebuild it with `lede train answers`"
            )

    def __call__(self, row: Sequence[float]) -> float:
        return self.intercept + math.fsum(w * x for w, x in zip(self.weights, row, strict=True))

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Combiner:
        return cls(
            weights=tuple(float(w) for w in raw["weights"]),
            intercept=float(raw["intercept"]),
            names=tuple(raw["features"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.names),
            "weights": list(self.weights),
            "intercept": self.intercept,
        }


@dataclass(frozen=True, slots=True)
class Reading:
    """One of the best candidates, read in its window and judged."""

    scored: Scored
    window: Span  # into the passage text
    span: Span | None  # the reader's span, into the passage text
    quote: Span  # what the answer quotes: the candidate that holds the span, into the passage
    features: tuple[float, ...]
    score: float  # the combiner's


def span_kind(text: str) -> str:
    """What a short answer looks like: a number, a date, a name, or a phrase."""
    if _DIGIT.search(text) or _NUMBER_WORD.search(text):
        return (
            "date"
            if _MONTH.search(text) and not re.search(r"\d[\d,.]*\s*\D{0,6}%|pct", text)
            else "number"
        )
    if _MONTH.search(text):
        return "date"
    if text[:1].isupper():
        return "name"
    return "phrase"


def kind_match(question: str, text: str | None) -> float:
    """1.0 when a span `text` is of the kind the question asks for (any span, when it asks
    for nothing in particular), 0.0 when not or when there is no span."""
    if not text:
        return 0.0
    asked = question_type(question)
    if asked is None:
        return 1.0
    kind = span_kind(text)
    if asked == "number":
        return float(
            kind in ("number", "date") and bool(_DIGIT.search(text) or _NUMBER_WORD.search(text))
        )
    if asked == "date":
        return float(kind in ("date", "number"))
    return float(kind == "name")


def coverage(question: str, text: str) -> float:
    """The share of the question's analyzed terms that `text` mentions."""
    asked = set(_ANALYZE(question))
    if not asked:
        return 0.0
    return len(asked & set(_ANALYZE(text))) / len(asked)


def quote_for(passage: PassageText, scored: Scored, span: Span | None) -> Span:
    """The candidate holding the span (a pair when its sentence refers back), from the first
    sentence the span touches to the last; the scored candidate itself without a span."""
    if span is None:
        return scored.start, scored.end
    spans = passage.spans
    touched = [i for i, (s, e) in enumerate(spans) if s < span[1] and span[0] < e]
    ending = {c.last: c for c in candidates(passage.text, spans, passage.title)}
    if not touched or touched[0] not in ending:  # not in a sentence that can be an answer
        return scored.start, scored.end
    first = ending[touched[0]]
    return first.start, max(first.end, spans[touched[-1]][1])


def read_top(
    reader: Any,
    combiner: Combiner,
    question: str,
    passages: Sequence[PassageText],
    ranked: Sequence[Scored],
    top: int,
) -> list[Reading]:
    """The `top` best-ranked candidates read in their windows and judged, best first."""
    chosen = list(ranked[:top])
    windows = [window(passages[s.passage].spans, s.first, s.last) for s in chosen]
    texts = [passages[s.passage].text[a:b] for s, (a, b) in zip(chosen, windows, strict=True)]
    spans: list[ReadSpan | None] = reader.read(
        question, [(passages[s.passage].title, t) for s, t in zip(chosen, texts, strict=True)]
    )
    readings = []
    for scored, (start, _), text, read in zip(chosen, windows, texts, spans, strict=True):
        passage = passages[scored.passage]
        span = (start + read.start, start + read.end) if read is not None else None
        row = features(question, passage.title, text, scored, read, span)
        readings.append(
            Reading(
                scored=scored,
                window=(start, start + len(text)),
                span=span,
                quote=quote_for(passage, scored, span),
                features=row,
                score=combiner(row),
            )
        )
    return sorted(readings, key=lambda r: -r.score)


def features(
    question: str,
    title: str,
    window_text: str,
    scored: Scored,
    read: ReadSpan | None,
    span: Span | None,
) -> tuple[float, ...]:
    """The `FEATURES` row of one read candidate (`span` in passage offsets)."""
    if read is None or span is None:
        return (
            scored.rank_score,
            -20.0,
            -20.0,
            0.0,
            0.0,
            coverage(question, f"{title} {window_text}"),
        )
    inside = float(scored.start <= span[0] and span[1] <= scored.end)
    return (
        scored.rank_score,
        read.evidence,
        read.score,
        inside,
        kind_match(question, window_text[read.start : read.end]),
        coverage(question, f"{title} {window_text}"),
    )
