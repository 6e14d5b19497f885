"""The header lines of an article saved as text: datelines, date lines, bylines, photo credits.

The indexer reads them for metadata (`indexer.documents`); the answerer never returns them as
an answer (`service.answer_candidates`). Both use these patterns, so they agree on what a
header line is.
"""

from __future__ import annotations

import re
from datetime import datetime

BYLINE = re.compile(
    r"^\s*(by|written by|reporting by|editing by|additional reporting by)\s+\S", re.I
)
CREDIT = re.compile(
    r"^\s*(\(?(photo|image|picture|video|credit|source|file photo|getty|reuters|ap|afp)\b"
    r"[^.]*[:)]|©|copyright\b|posted (on|by)\b|updated\b|published\b|share\b|advertisement\b)",
    re.I,
)
DATELINE = re.compile(
    r"^\s*(date\s*[:\-]?\s*)?(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|"
    r"(mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    r"[a-z]*\.?\s+\d{1,2},?\s+\d{4})",
    re.I,
)

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# An explicit calendar date somewhere in a line: ISO, US numeric, "Oct. 13, 2020", "13 October
# 2020", each optionally with a time. Only these forms are read, never "yesterday".
_DATE = re.compile(
    r"\b(\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?"
    rf"|\d{{1,2}}/\d{{1,2}}/\d{{4}}|{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{4}})"
    r"(?:,?\s+(?:at\s+)?\d{1,2}:\d{2}\s*(?:[ap]\.?m\.?)?)?",
    re.I,
)
# "date 2020-10-13 ...", "Posted on October 13, 2020 by ...", "Published: 13 Oct 2020".
_DATE_LINE = re.compile(
    r"^\s*(?:date[d]?|posted(?:\s+on)?|published(?:\s+on)?|updated(?:\s+on)?|last updated)"
    r"\s*[:\-]?\s*",
    re.I,
)
_WEEKDAY = re.compile(r"^\s*(mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+", re.I)
# "ROME, Oct. 13 (Reuters) -" or "NEW YORK, October 13, 2020 (AP) —": a wire dateline.
_WIRE = re.compile(
    r"^\s*[A-Z][A-Z .'’-]+(?:,\s*[A-Za-z .]+)?,\s*"
    rf"(?P<date>(?i:{_MONTH})\s+\d{{1,2}}(?:,?\s+\d{{4}})?)"
    r"\s*\((?P<agency>[A-Za-z][\w .&-]{0,40})\)\s*[-–—]",
)
_AUTHOR = re.compile(r"^\s*(?:by|written by|author\s*:)\s+(?P<name>.+?)\s*$", re.I)
MAX_BYLINE_WORDS = 12
_NAME_PARTICLES = {"and", "&", "de", "del", "der", "van", "von", "la", "le", "da", "di", "bin"}


def parse_date(text: str) -> datetime | None:
    """An explicit date (and time) in `text`, read by dateparser; None without one."""
    import dateparser

    found = _DATE.search(text)
    if found is None:
        return None
    parsed: datetime | None = dateparser.parse(
        found.group(0), languages=["en"], settings={"STRICT_PARSING": True, "DATE_ORDER": "MDY"}
    )
    return parsed


def line_date(line: str) -> datetime | None:
    """The date a date line states ("date 2020-10-13 Rome", "Posted on Oct. 13, 2020",
    a line that is only a date), or None for any other line."""
    rest = _WEEKDAY.sub("", _DATE_LINE.sub("", line, count=1), count=1)
    found = _DATE.search(rest)
    if found is None:
        return None
    # The date must open the line (after its label): a sentence that mentions a date is not
    # a date line.
    if rest[: found.start()].strip(" ,|-–—"):
        return None
    return parse_date(found.group(0))


def wire_dateline(
    line: str, reference: datetime | None = None
) -> tuple[datetime | None, str, bool] | None:
    """A wire dateline's date, agency, and whether the year was inferred; None for another line.

    A dateline without its year ("ROME, Oct. 13 (Reuters) -") is dated to the latest such day
    not after `reference` (a saved file's modification time), or left undated without one.
    """
    found = _WIRE.search(line)
    if found is None:
        return None
    agency = found.group("agency").strip()
    stated = parse_date(found.group("date"))
    if stated is not None or reference is None:
        return stated, agency, False
    import dateparser

    inferred: datetime | None = dateparser.parse(
        found.group("date"),
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "past",
            "RELATIVE_BASE": reference.replace(tzinfo=None),
            "REQUIRE_PARTS": ["month", "day"],
        },
    )
    return inferred, agency, inferred is not None


def byline_author(line: str) -> str | None:
    """The name in a byline ("By Jane Doe", "Author: Jane Doe"), or None."""
    found = _AUTHOR.match(line)
    if found is None:
        return None
    name = re.split(r"\s+[|•·]\s+|\s+[-–—]\s+", found.group("name"))[0].strip(" ,;")
    words = name.split()
    if not words or len(words) > MAX_BYLINE_WORDS:
        return None
    # A name is capitalised words ("By the end of the year, ..." is a sentence).
    if not all(w[:1].isupper() or w.lower() in _NAME_PARTICLES for w in words):
        return None
    return name


def is_header_line(line: str) -> bool:
    """Whether a line is a byline, a photo credit or a dateline rather than text."""
    return bool(BYLINE.search(line) or CREDIT.search(line) or DATELINE.search(line))
