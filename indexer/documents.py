"""What a document says about itself: YAML front matter, the header lines of a plain-text
article, and the article inside an HTML page.

Rules for `.txt` / `.md` files (README, "Index your own files"):
1. YAML front matter (`---` ... `---`, read by python-frontmatter) gives any field: `title`,
   `date` / `published` / `published_at`, `author` / `authors`, `tags` / `keywords`, `url`,
   `source`, `id`; other keys land in `metadata`. The text stored is the body after it.
2. Otherwise the first lines are read as a news page lays them out: a date line
   ("date 2020-10-13 Rome", "Posted on Oct. 13, 2020") becomes `published_at`, a byline
   ("By Jane Doe") `author`, photo credits are passed over, and the first other line (at most
   `MAX_TITLE_CHARS`, Markdown `#` removed) is the title. A wire dateline opening the story
   ("ROME, Oct. 13, 2020 (Reuters) -") gives the agency as `source` and the date; without a
   year ("ROME, Oct. 13 (Reuters) -") the year is the latest that puts the day on or before the
   file's modification time, and `metadata.published_at_inferred` says so. Front matter wins
   over these.
3. Without a title line, the file name is the title ("rome-floods.txt" -> "rome floods").
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

from lede.indexer.errors import InvalidArticleError
from lede.indexer.header_lines import CREDIT, byline_author, line_date, parse_date, wire_dateline

MAX_TITLE_CHARS = 250
HEADER_LINES = 8  # how many leading non-blank lines may be header lines

FRONT_MATTER_KEYS = {
    "id": "id",
    "title": "title",
    "date": "published_at",
    "published": "published_at",
    "published_at": "published_at",
    "author": "author",
    "authors": "author",
    "tags": "tags",
    "keywords": "tags",
    "url": "url",
    "link": "url",
    "source": "source",
}

_HTML_START = re.compile(r"^\s*(<!doctype\s+html|<html\b|<head\b|<body\b|<article\b)", re.I)
_HTML_TAG = re.compile(r"</?(p|div|span|br|a|h[1-6]|ul|ol|li|table|section|main|em|strong)\b", re.I)


def title_from_name(name: str) -> str:
    """A title from a file name: "2020/rome-floods_day1.txt" -> "rome floods day1"."""
    stem = name.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem[1:] else stem
    return " ".join(re.split(r"[-_\s]+", stem)).strip()


def text_fields(text: str, saved: datetime | None = None) -> dict[str, Any]:
    """The article fields of a `.txt` / `.md` document (`text` included; no `id` unless its
    front matter gives one; no title when neither it nor a line gives one).

    Raises:
        InvalidArticleError: front matter that is not valid YAML or has a bad field.
    """
    front, body = _front_matter(text)
    fields = header_fields(body, saved)
    if "metadata" in fields and "metadata" in front:
        front["metadata"] = {**fields["metadata"], **front["metadata"]}
    fields.update(front)
    fields["text"] = body
    return fields


def header_fields(body: str, saved: datetime | None = None) -> dict[str, Any]:
    """Title, date, author and source read from the leading lines of a plain-text article
    (`saved`: when the file was saved, for a dateline that leaves out the year)."""
    fields: dict[str, Any] = {}
    title: str | None = None
    lines = [line.strip() for line in body.splitlines() if line.strip()][:HEADER_LINES]
    for line in lines:
        when = line_date(line)
        if when is not None:
            fields.setdefault("published_at", when)
            continue
        wire = wire_dateline(line, saved)
        if wire is not None:  # the story itself has begun
            when, agency, inferred = wire
            if when is not None and "published_at" not in fields:
                fields["published_at"] = when
                if inferred:
                    fields["metadata"] = {"published_at_inferred": "year from the file's time"}
            fields.setdefault("source", agency)
            break
        author = byline_author(line)
        if author is not None:
            fields.setdefault("author", author)
            continue
        if CREDIT.search(line):
            continue
        if title is not None:
            break  # the first line after the title that is not a header line: the story
        candidate = line.lstrip("#").strip()
        title = candidate if len(candidate) <= MAX_TITLE_CHARS else ""
        if not title:
            break  # a paragraph, not a headline
    if title:
        fields["title"] = title
    return fields


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    import frontmatter
    import yaml

    try:
        metadata, body = frontmatter.parse(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidArticleError(f"front matter is not valid YAML{where}: {error}") from None
    if not metadata:
        return {}, text
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in metadata.items():
        target = FRONT_MATTER_KEYS.get(str(key).lower())
        if target is None:
            extra[str(key)] = _jsonable(value)
        elif target == "published_at":
            fields[target] = _front_matter_date(str(key), value)
        elif target == "author" and isinstance(value, list):
            fields[target] = ", ".join(str(v) for v in value)
        elif target == "tags" and isinstance(value, list):
            fields[target] = [str(v) for v in value]
        elif target == "id" and isinstance(value, int):
            fields[target] = str(value)
        else:
            fields[target] = value
    if extra:
        fields["metadata"] = extra
    return fields, body


def _front_matter_date(key: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    parsed = parse_date(str(value))
    if parsed is None:
        raise InvalidArticleError(
            f"front matter field '{key}': cannot read {value!r} as a date "
            "(use e.g. 2020-10-13 or 'Oct. 13, 2020')"
        )
    return parsed


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def looks_like_html(text: str) -> bool:
    """Whether a body is an HTML page or fragment rather than text."""
    if _HTML_START.match(text):
        return True
    head = text[:20_000]
    return head.lstrip().startswith("<") and len(_HTML_TAG.findall(head)) >= 3


def html_fields(html: str) -> dict[str, Any]:
    """The main text and metadata of an HTML page, extracted by trafilatura.

    Raises:
        InvalidArticleError: the markup cannot be parsed or holds no article text.
    """
    import trafilatura

    try:
        document = trafilatura.bare_extraction(html, with_metadata=True, favor_precision=True)
    except Exception as error:  # trafilatura raises many kinds on broken markup
        raise InvalidArticleError(f"HTML could not be parsed: {error}") from None
    if document is None:
        raise InvalidArticleError("no article text found in the HTML")
    found = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    text = found.get("text") or ""
    if not text.strip():
        raise InvalidArticleError("no article text found in the HTML")
    fields: dict[str, Any] = {"title": found.get("title") or "", "text": text}
    for key, target in (("url", "url"), ("date", "published_at"), ("author", "author")):
        if found.get(key):
            fields[target] = found[key]
    if found.get("sitename"):
        fields["source"] = found["sitename"]
    tags = found.get("tags")
    if tags:
        fields["tags"] = [t for t in tags if t] if isinstance(tags, list) else []
    return fields
