"""Candidate answers in a passage: sentences, line by line, and pairs that read as one.

An answer is one sentence, or two adjacent sentences when the second refers back to the first
("She plays Grace." after the sentence that names the actress): such a sentence is judged
only together with the one before it. Line breaks always end a
sentence, and lines that are not sentences (datelines, bylines, photo credits, the headline
repeated in the body, other short fragments) are never answers, though they stay indexed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lede.indexer.header_lines import is_header_line
from lede.indexer.sentences import Span, sentence_spans, strip_span

_WORD = re.compile(r"[A-Za-z0-9][\w'’-]*")
_REFERS_BACK = re.compile(
    r"^\s*[\"“']?(he|she|it|they|his|her|its|their|this|that|these|those|there|then|"
    r"the (film|movie|show|series|book|company|studio|group|team|film's|movie's|actor|actress|"
    r"director|star|project|move|decision|delay|change|production|sequel|album|song|game|"
    r"report|study|city|country|government|festival|event|league|club|firm|bank|plant)|"
    r"but|also|however|instead|later|meanwhile|still|yet|so|because|as a result)\b",
    re.I,
)
MIN_WORDS = 6


@dataclass(frozen=True, slots=True)
class Candidate:
    """An answer candidate: sentence positions `first..last` and its span in the passage."""

    first: int
    last: int
    start: int
    end: int

    @property
    def is_pair(self) -> bool:
        return self.last > self.first


def answer_sentences(text: str) -> list[Span]:
    """Sentence spans of `text` where every line break also ends a sentence."""
    spans: list[Span] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        for start, end in sentence_spans(line):
            spans.append((offset + start, offset + end))
        offset += len(line)
    return [s for s in (strip_span(text, a, b) for a, b in spans) if s is not None]


def is_answer_sentence(sentence: str, title: str = "") -> bool:
    """False for lines that are not sentences: bylines, credits, datelines, the headline
    repeated in the body, and fragments under `MIN_WORDS` words without a final stop."""
    words = _WORD.findall(sentence)
    if len(words) < 3:
        return False
    if is_header_line(sentence):
        return len(words) >= 25 and sentence.rstrip()[-1:] in '.!?"”'  # a real sentence after all
    if title and _squash(sentence) == _squash(title):
        return False
    ends_like_sentence = sentence.rstrip()[-1:] in ".!?\"”'’)"
    return ends_like_sentence or len(words) >= MIN_WORDS * 2


def refers_back(sentence: str) -> bool:
    """True when the sentence opens with a word that points at the one before it."""
    return bool(_REFERS_BACK.search(sentence))


def _squash(text: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(text))


def candidates(text: str, spans: Sequence[Span], title: str = "") -> list[Candidate]:
    """Answer sentences, where one that refers back comes only with the sentence before it."""
    eligible = [is_answer_sentence(text[s:e], title) for s, e in spans]
    result = []
    for i, (start, end) in enumerate(spans):
        if not eligible[i]:
            continue
        paired = (
            i > 0
            and eligible[i - 1]
            and refers_back(text[start:end])
            and text[spans[i - 1][1] : start].count("\n") < 2  # not across a paragraph break
        )
        if paired:
            result.append(Candidate(i - 1, i, spans[i - 1][0], end))
        else:
            result.append(Candidate(i, i, start, end))
    return result
