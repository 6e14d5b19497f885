"""What kind of answer a question asks for, and whether a sentence can supply it.

A cheap prior on top of similarity: a "how many" question is answered by a sentence with a
number, a "who" question by one naming someone the question does not already name.
"""

from __future__ import annotations

import re
from typing import Literal

AnswerType = Literal["number", "date", "person"]

_NUMBER_QUESTION = re.compile(
    r"^\s*(how (much|many|long|far|old|big|large|tall|high|fast|often)|what (percentage|"
    r"fraction|share|proportion|temperature|price|amount|number|time)|at what (speed|price))\b",
    re.IGNORECASE,
)
_DATE_QUESTION = re.compile(
    r"^\s*(when|what (year|date|day|month)|in (what|which) year|since when)\b", re.IGNORECASE
)
_PERSON_QUESTION = re.compile(
    r"^\s*(who|whom|whose|which (actor|actress|player|person|author|director|runner|man|woman))\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|half|quarter|third|dozen)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(1[5-9]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|"
    r"october|november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"spring|summer|autumn|winter|yesterday|today|tomorrow)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")


def question_type(question: str) -> AnswerType | None:
    if _NUMBER_QUESTION.search(question):
        return "number"
    if _DATE_QUESTION.search(question):
        return "date"
    if _PERSON_QUESTION.search(question):
        return "person"
    return None


def type_match(answer_type: AnswerType | None, question: str, sentence: str) -> float:
    """1.0 when the sentence holds the kind of thing the question asks for, else 0.0."""
    if answer_type == "number":
        return 1.0 if _NUMBER.search(sentence) else 0.0
    if answer_type == "date":
        return 1.0 if _DATE.search(sentence) else 0.0
    if answer_type == "person":
        asked = question.lower()
        names = [m.group(0) for m in _NAME.finditer(sentence)]
        return 1.0 if any(name.lower() not in asked for name in names) else 0.0
    return 0.0
