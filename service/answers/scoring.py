"""Which candidate answers a question: a cheap lexical shortlist, then the learned scorer.

The cross-encoder costs about 4 ms a candidate on two CPU cores, so it reads only the
`SHORTLIST` candidates that share the most of the question's (idf-weighted) terms, with the
passage's retrieval rank as a tie-breaker. Everything here is independent of the index, so the
evaluation and `lede train answers` score WikiQA and TrecQA with the same code as the service.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lede.indexer.sentences import Span
from lede.indexer.text_analysis import Analyzer
from lede.service.answers.candidates import Candidate, candidates

SHORTLIST = 12
# Candidates are ranked by `logit + PRIOR_WEIGHT * prior` (prior: the passage's retrieval score
# over the best passage's; the logit includes the model's bi-encoder term). Chosen on a dev
# end-to-end set (WikiQA dev questions over the WikiQA train + dev pages indexed as articles,
# `python -m lede.eval.answer_prior`): with the similarity weight 12, 0.667 at 0, 0.698 at 2,
# 0.714 at 4-10 (6: the middle of that plateau), 0.706 at 15, 0.690 at 20-30 (decision 48, its
# figures re-counted with each question's own labels in 49; 15 before the bi-encoder term,
# decision 31). The confidence reads the logit and its margin, not
# the prior (32).
PRIOR_WEIGHT = 6.0
# The calibration reads how far the best candidate's logit stands above the best other answer
# (one that does not overlap it), clipped to this; a lone candidate gets the cap.
MARGIN_CAP = 5.0
_ANALYZE = Analyzer()


class Scorer(Protocol):
    def logits(self, question: str, candidates: Sequence[tuple[str, str]]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class PassageText:
    """A passage to answer from: its title, its text and the text's sentence spans."""

    title: str
    text: str
    spans: Sequence[Span]
    prior: float = 1.0  # retrieval score relative to the best passage


@dataclass(frozen=True, slots=True)
class Scored:
    passage: int
    first: int
    last: int
    start: int  # into the passage text
    end: int
    logit: float
    rank_score: float  # logit + PRIOR_WEIGHT * prior: what candidates are ordered by

    @property
    def is_pair(self) -> bool:
        return self.last > self.first


def overlaps(a: Scored, b: Scored) -> bool:
    """Whether two candidates share a sentence of the same passage."""
    return a.passage == b.passage and a.first <= b.last and b.first <= a.last


def margin(
    best: Scored,
    rest: Iterable[Scored],
    same: Callable[[Scored, Scored], bool] = overlaps,
) -> float:
    """The best candidate's logit minus the best other answer's, within +-`MARGIN_CAP`."""
    others = [s.logit for s in rest if not same(best, s)]
    return capped_margin(best.logit - max(others)) if others else MARGIN_CAP


def capped_margin(value: float) -> float:
    """A margin within +-`MARGIN_CAP`."""
    return max(-MARGIN_CAP, min(MARGIN_CAP, value))


def term_coverage(question: str, texts: Sequence[str]) -> list[float]:
    """Each text's share of the question's terms, weighted by their idf over these texts."""
    analyzed = [set(_ANALYZE(text)) for text in texts]
    frequency = Counter(term for terms in analyzed for term in terms)
    terms = set(_ANALYZE(question))
    weights = {t: math.log(1 + len(texts) / frequency[t]) for t in terms if frequency[t]}
    total = sum(weights.values()) or 1.0
    return [sum(w for t, w in weights.items() if t in found) / total for found in analyzed]


def _shortlist(question: str, texts: list[str], priors: list[float], limit: int) -> list[int]:
    """Indices of the `limit` texts with the most idf-weighted question terms."""
    if len(texts) <= limit:
        return list(range(len(texts)))
    coverage = term_coverage(question, texts)
    keys = [coverage[i] + 0.25 * priors[i] for i in range(len(texts))]
    order = sorted(range(len(texts)), key=lambda i: (-keys[i], i))
    return sorted(order[:limit])


def score_candidates(
    scorer: Scorer,
    question: str,
    passages: Sequence[PassageText],
    *,
    shortlist: int = SHORTLIST,
) -> list[Scored]:
    """The shortlisted candidates of all passages, best first (by `rank_score`)."""
    found: list[tuple[int, Candidate]] = []
    for number, passage in enumerate(passages):
        for candidate in candidates(passage.text, passage.spans, passage.title):
            found.append((number, candidate))
    if not found:
        return []
    texts = [passages[n].text[c.start : c.end] for n, c in found]
    chosen = _shortlist(question, texts, [passages[n].prior for n, _ in found], shortlist)
    logits = scorer.logits(question, [(passages[found[i][0]].title, texts[i]) for i in chosen])
    scored = [
        Scored(
            found[i][0],
            found[i][1].first,
            found[i][1].last,
            found[i][1].start,
            found[i][1].end,
            float(logit),
            float(logit) + PRIOR_WEIGHT * passages[found[i][0]].prior,
        )
        for i, logit in zip(chosen, logits, strict=True)
    ]
    return sorted(scored, key=lambda s: (-s.rank_score, s.passage, s.start))
