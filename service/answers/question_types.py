"""What kind of short answer a question asks for: a person, a date, a place or a number."""

from __future__ import annotations

import re
from typing import Literal

AnswerType = Literal["number", "date", "person", "place"]

_NUMBER_QUESTION = re.compile(
    r"\b(how (much|many|long|far|old|big|large|tall|high|fast|often|deep|wide|heavy)|"
    r"what (percentage|fraction|share|proportion|temperature|price|amount|number|age|size|"
    r"population)|at what (speed|price|age))\b",
    re.IGNORECASE,
)
_DATE_QUESTION = re.compile(
    r"(^\s*when\b|\b(what|which) (year|date|day|month|decade|century)\b|\bin (what|which) year|"
    r"\bsince when\b|\bwhen (did|does|do|is|was|were|will|has|had|are)\b)",
    re.IGNORECASE,
)
_PERSON_QUESTION = re.compile(
    r"(^\s*(who|whom|whose)\b|\b(who|whom) (is|was|were|are|did|does|do|will|has|had|plays|"
    r"played|directs|directed|wrote|won|led|leads|founded|invented)\b|\bby whom\b|"
    r"\b(which|what) (actor|actress|player|person|author|director|writer|singer|president|"
    r"king|queen|man|woman|scientist|artist|composer|coach|leader|company|team|band)\b)",
    re.IGNORECASE,
)
_PLACE_QUESTION = re.compile(
    r"(^\s*where\b|\bwhere (is|was|were|are|did|does|do|will|has|had)\b|\b(what|which) "
    r"(city|country|state|place|town|region|continent|island|province|county|location|venue|"
    r"stadium|river|capital)\b|\bin what (city|country|state|place|town)\b)",
    re.IGNORECASE,
)


def question_type(question: str) -> AnswerType | None:
    """The short-answer type asked for, or None for why / how / what questions."""
    if _NUMBER_QUESTION.search(question):
        return "number"
    if _DATE_QUESTION.search(question):
        return "date"
    if _PLACE_QUESTION.search(question):
        return "place"
    if _PERSON_QUESTION.search(question):
        return "person"
    return None
