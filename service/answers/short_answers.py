"""The short answer inside an answer sentence: the name, date, place or number asked for.

No NER model can be downloaded here, so candidates come from patterns (capitalised name
sequences, numbers with their magnitude and unit, dates checked by `dateparser`), and the one
chosen is the candidate the question does not already contain that sits nearest to the
question's own words in the sentence (answers sit next to what the question asks about).
"""

from __future__ import annotations

import functools
import re

from lede.indexer.sentences import Span
from lede.indexer.text_analysis import Analyzer
from lede.service.answers.question_types import AnswerType, question_type

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+"
    rf"(?:of\s+)?{_MONTH},?\s+\d{{4}}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b|{_MONTH},?\s+"
    rf"\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|(?:early|mid|late)[- ]\d{{4}}s?|\d{{3,4}}s|"
    rf"(?:1[0-9]|20)\d\d|\d{{1,2}}(?:st|nd|rd|th) [Cc]entury)\b"
)
_SPELLED = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|dozen|half)(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?"
)
_MAGNITUDE = r"(?:\s(?:thousand|million|billion|trillion|hundred))?"
_UNIT = (
    r"(?:\s?(?:%|percent|per cent)|\s(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?|"
    r"km|kilometres?|kilometers?|miles?|metres?|meters?|feet|foot|inches|kg|kilograms?|"
    r"pounds?|tons?|tonnes?|acres?|square (?:miles|kilometres|kilometers|feet)|degrees?)"
    r"(?: old)?)?"
)
_NUMBER = re.compile(
    rf"(?:[$€£¥]\s?)?(?:\d(?:[\d,]*\d)?(?:\.\d+)?|\b{_SPELLED}\b){_MAGNITUDE}{_UNIT}", re.IGNORECASE
)
_NAME_WORD = r"(?:[A-Z][\w'’.-]*|[A-Z]\.)"
_NAME = re.compile(
    rf"\b{_NAME_WORD}(?:\s+(?:(?:of|de|da|van|von|der|la|du|the|and|&)\s+)?{_NAME_WORD})*"
)
_PLACE_CUE = re.compile(r"\b(in|at|from|near|to|into|of|across|outside|inside)\s+(the\s+)?$", re.I)
_NOT_NAMES = frozenset(
    "the a an in on at of for and but or this that these those it he she they his her its "
    "their we i you after before during when while as by with from to since until instead "
    "earlier later like however although also many some most despite because following "
    "according today yesterday meanwhile other each every both such several there here "
    "monday tuesday wednesday thursday friday saturday sunday january february march april "
    "may june july august september october november december".split()
)
_POSSESSIVE = re.compile(r"['’]s?$")
_ANALYZE = Analyzer()


@functools.lru_cache(maxsize=4096)
def _is_date(text: str) -> bool:
    if re.fullmatch(r"(?:1[0-9]|20)\d\d|\d{3,4}s|\d{1,2}(?:st|nd|rd|th) century", text, re.I):
        return True
    import dateparser

    return dateparser.parse(text, languages=["en"]) is not None


def _candidates(kind: AnswerType, sentence: str, question: str) -> list[Span]:
    if kind == "date":
        return [m.span() for m in _DATE.finditer(sentence) if _is_date(m.group(0))]
    if kind == "number":
        spans = []
        for match in _NUMBER.finditer(sentence):
            start, end = match.span()
            if not sentence[start:end].strip():
                continue
            # A bare year is not an amount, unless the question asks for a year-like amount.
            if re.fullmatch(r"(?:1[5-9]|20)\d\d", match.group(0)) and "year" not in question:
                continue
            spans.append((start, end))
        return spans
    spans = []
    for match in _NAME.finditer(sentence):
        start, end = match.span()
        words = match.group(0).split()
        while words and words[0].lower() in _NOT_NAMES:  # "The", "In" opening a sentence
            start += len(words[0]) + 1
            words = words[1:]
        while words and words[-1].lower() in {"of", "de", "the", "and", "&", "van", "von"}:
            words = words[:-1]
        if not words:
            continue
        end = start + len(" ".join(words)) if " ".join(words) in sentence[start:end] else end
        text = _POSSESSIVE.sub("", sentence[start:end].rstrip(".,"))
        end = start + len(text)
        if not text or (len(text.split()) == 1 and text.lower() in _NOT_NAMES):
            continue
        if _DATE.fullmatch(text):
            continue
        if kind == "place" and not _PLACE_CUE.search(sentence[max(0, start - 14) : start]):
            continue
        spans.append((start, end))
    return spans


def short_answer(question: str, sentence: str) -> Span | None:
    """`(start, end)` of the short answer in `sentence`, or None when none is clear.

    Only who / when / where / how many / how much / how old (and similar) questions get one.
    """
    kind = question_type(question)
    if kind is None:
        return None
    question_terms = set(_ANALYZE(question))
    found = []
    for start, end in _candidates(kind, sentence, question.lower()):
        terms = set(_ANALYZE(sentence[start:end]))
        if terms and terms <= question_terms:  # the question already says it
            continue
        found.append((start, end))
    if not found and kind == "place":  # no preposition before it: any new name will do
        found = [
            (s, e)
            for s, e in _candidates("person", sentence, question.lower())
            if not set(_ANALYZE(sentence[s:e])) <= question_terms
        ]
    if not found:
        return None
    matches = [
        match
        for match in re.finditer(r"\w+", sentence)
        if set(_ANALYZE(match.group(0))) & question_terms
    ]
    # The answer sits next to the question's predicate ("directed by X"), more than next to
    # the names it repeats ("Ada Marsh in Fog Line"): lowercase matches anchor first.
    lowercase = [m.start() for m in matches if not m.group(0)[0].isupper()]
    anchors = lowercase or [m.start() for m in matches]

    def distance(span: Span) -> tuple[int, int]:
        if not anchors:
            return (0, span[0])
        return (min(min(abs(a - span[0]), abs(a - span[1])) for a in anchors), span[0])

    return min(found, key=distance)
