"""Reading articles from JSONL, CSV and directories of .txt / .md / .html files.

Readers yield either an `Article` or a `Skipped` item naming the source, the line (for
line-based formats) and the reason, so one bad record never stops the rest.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from indexer.errors import InvalidArticleError, SourceError
from indexer.models import Article, parse_article

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
RECORD_SUFFIXES = {".jsonl", ".ndjson", ".csv"}
MAX_FILE_BYTES = 50_000_000


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that was not indexed, and why."""

    source: str
    line: int | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Item = Article | Skipped


def read_source(path: Path) -> Iterator[Item]:
    """Articles from one path: a .jsonl/.csv file, a text/html file, or a directory.

    Raises:
        SourceError: the path does not exist or its type is not supported.
    """
    if not path.exists():
        raise SourceError(f"source {path} does not exist")
    if path.is_dir():
        yield from _read_directory(path)
        return
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        yield from read_jsonl(path)
    elif suffix == ".csv":
        yield from read_csv(path)
    elif suffix in TEXT_SUFFIXES | HTML_SUFFIXES:
        yield _read_document(path, path.parent)
    else:
        raise SourceError(
            f"source {path}: unsupported file type {suffix or '(none)'}; use .jsonl, .csv, "
            ".txt, .md, .html or a directory of them"
        )


def _decode(path: Path) -> str | Skipped:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Skipped(str(path), None, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        data = path.read_bytes()
    except OSError as error:
        return Skipped(str(path), None, f"cannot read file: {error.strerror}")
    if b"\x00" in data[:8192]:
        return Skipped(str(path), None, "binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return Skipped(str(path), None, f"not valid UTF-8 at byte {error.start}")


def read_jsonl(path: Path) -> Iterator[Item]:
    """One JSON object per line; `id` or BEIR's `_id`. Blank lines are ignored."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                yield Skipped(str(path), number, f"not valid UTF-8 at byte {error.start}")
                continue
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                yield Skipped(
                    str(path), number, f"invalid JSON: {error.msg} (column {error.colno})"
                )
                continue
            yield _parse(data, str(path), number)


def read_csv(path: Path) -> Iterator[Item]:
    """A header row naming the fields (`id`, `title`, `text`, ...); tags split on `;`."""
    text = _decode(path)
    if isinstance(text, Skipped):
        yield text
        return
    csv.field_size_limit(sys.maxsize)
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    header = set(reader.fieldnames or ())
    if "text" not in header or not header & {"id", "_id"}:
        yield Skipped(str(path), 1, "CSV header must name at least the columns 'id' and 'text'")
        return
    line = reader.line_num
    try:
        for row in reader:
            start, line = line + 1, reader.line_num
            if None in row:
                yield Skipped(str(path), start, "row has more fields than the header")
                continue
            if any(value is None for value in row.values()):
                yield Skipped(str(path), start, "row has fewer fields than the header")
                continue
            yield _parse(dict(row), str(path), start)
    except csv.Error as error:
        yield Skipped(
            str(path), line + 1, f"malformed CSV ({error}); the rest of the file was not read"
        )


def _parse(data: Any, source: str, line: int | None) -> Item:
    try:
        return parse_article(data)
    except InvalidArticleError as error:
        return Skipped(source, line, str(error))


def _read_directory(root: Path) -> Iterator[Item]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        suffix = path.suffix.lower()
        if suffix in RECORD_SUFFIXES:
            yield from read_source(path)
        elif suffix in TEXT_SUFFIXES | HTML_SUFFIXES:
            yield _read_document(path, root)
        else:
            yield Skipped(str(path), None, f"unsupported file type {suffix or '(none)'}")


def _read_document(path: Path, root: Path) -> Item:
    text = _decode(path)
    if isinstance(text, Skipped):
        return text
    article_id = path.relative_to(root).as_posix()
    if path.suffix.lower() in HTML_SUFFIXES:
        return _html_article(article_id, text, str(path))
    title = ""
    for line in text.splitlines():
        if line.strip():
            candidate = line.strip().lstrip("#").strip()
            title = candidate if len(candidate) <= 200 else ""
            break
    return _parse({"id": article_id, "title": title, "text": text}, str(path), None)


def _html_article(article_id: str, html: str, source: str) -> Item:
    """Main text and metadata of an HTML page, extracted by trafilatura."""
    import trafilatura

    try:
        document = trafilatura.bare_extraction(html, with_metadata=True, favor_precision=True)
    except Exception as error:  # trafilatura raises many kinds on broken markup
        return Skipped(source, None, f"HTML could not be parsed: {error}")
    if document is None:
        return Skipped(source, None, "no article text found in the HTML")
    fields = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    text = fields.get("text") or ""
    if not text.strip():
        return Skipped(source, None, "no article text found in the HTML")
    data: dict[str, Any] = {"id": article_id, "title": fields.get("title") or "", "text": text}
    for key, target in (("url", "url"), ("date", "published_at"), ("author", "author")):
        if fields.get(key):
            data[target] = fields[key]
    if fields.get("sitename"):
        data["source"] = fields["sitename"]
    if fields.get("tags"):
        data["tags"] = [t for t in fields["tags"] if t] if isinstance(fields["tags"], list) else []
    return _parse(data, source, None)
