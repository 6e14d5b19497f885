"""Reading articles from JSONL, CSV and directories of .txt / .md / .html files.

Readers yield either an `Article` or a `Skipped` item naming the source, the line (for
line-based formats) and the reason, so one bad record never stops the rest.

A document file takes what it says about itself (`indexer.documents`), then any fields of a
sidecar beside it (`article.txt` + `article.json`). A JSONL or CSV row with a `path` and no
`text` is a manifest row: the document at that path (relative to the manifest), with the
row's fields over its own.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lede.indexer.documents import html_fields, text_fields, title_from_name
from lede.indexer.errors import InvalidArticleError, SourceError
from lede.indexer.models import Article, parse_article

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
SIDECAR_SUFFIX = ".json"
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
        yield _read_document(path, path.name)
    else:
        raise SourceError(
            f"source {path}: unsupported file type {suffix or '(none)'}; use .jsonl, .csv, "
            ".txt, .md, .html or a directory of them"
        )


def count_records(path: Path) -> int:
    """About how many articles `read_source(path)` yields (for a progress bar's total): the
    non-blank lines of JSONL, the rows of CSV, one per document file."""
    if path.is_dir():
        return sum(count_records(p) for p in _visible_files(path))
    suffix = path.suffix.lower()
    try:
        if suffix in {".jsonl", ".ndjson"}:
            with open(path, "rb") as handle:
                return sum(1 for line in handle if line.strip())
        if suffix == ".csv":
            csv.field_size_limit(sys.maxsize)
            with open(path, newline="", encoding="utf-8", errors="replace") as handle:
                return max(0, sum(1 for _ in csv.reader(handle)) - 1)
    except (OSError, csv.Error):
        return 0
    return 1 if suffix in TEXT_SUFFIXES | HTML_SUFFIXES else 0


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


def read_jsonl(path: Path, listed: set[Path] | None = None) -> Iterator[Item]:
    """One JSON object per line; `id` or BEIR's `_id`. Blank lines are ignored. Documents a
    manifest row names are added to `listed`."""
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
            yield _row(data, path, number, listed)


def read_csv(path: Path, listed: set[Path] | None = None) -> Iterator[Item]:
    """A header row naming the fields (`id`, `title`, `text`, ...); tags split on `;`. A
    manifest names `path` instead of `text`."""
    text = _decode(path)
    if isinstance(text, Skipped):
        yield text
        return
    csv.field_size_limit(sys.maxsize)
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    header = set(reader.fieldnames or ())
    if "path" not in header and ("text" not in header or not header & {"id", "_id"}):
        yield Skipped(
            str(path),
            1,
            "CSV header must name at least the columns 'id' and 'text' (articles) or 'path' "
            "(a manifest of document files)",
        )
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
            yield _row(dict(row), path, start, listed)
    except csv.Error as error:
        yield Skipped(
            str(path), line + 1, f"malformed CSV ({error}); the rest of the file was not read"
        )


def _parse(data: Any, source: str, line: int | None) -> Item:
    try:
        return parse_article(data)
    except InvalidArticleError as error:
        return Skipped(source, line, str(error))


def _row(data: Any, manifest: Path, line: int, listed: set[Path] | None) -> Item:
    """A record, or a manifest row: the document at its `path` with the row's fields over."""
    if not isinstance(data, dict) or "path" not in data or data.get("text"):
        return _parse(data, str(manifest), line)
    fields = {k: v for k, v in data.items() if v not in (None, "")}
    relative = str(fields.pop("path"))
    document = (manifest.parent / relative).resolve()
    if not document.is_file():
        return Skipped(str(manifest), line, f"field 'path': no file {relative} beside the manifest")
    if document.suffix.lower() not in TEXT_SUFFIXES | HTML_SUFFIXES:
        return Skipped(
            str(manifest), line, f"field 'path': {relative} is not a .txt, .md or .html file"
        )
    if listed is not None:
        listed.add(document)
    found = _document_fields(document, Path(relative).as_posix())
    if isinstance(found, Skipped):
        return Skipped(str(manifest), line, f"{relative}: {found.reason}")
    return _parse({**found, **fields}, str(manifest), line)


def _visible_files(root: Path) -> list[Path]:
    """The files under `root`, in order, hidden ones (and those in hidden folders) left out."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _read_directory(root: Path) -> Iterator[Item]:
    files = _visible_files(root)
    documents = {p for p in files if p.suffix.lower() in TEXT_SUFFIXES | HTML_SUFFIXES}
    sidecars = {d.with_suffix(SIDECAR_SUFFIX) for d in documents}
    listed: set[Path] = set()  # documents a manifest names are read from it, once
    for path in files:
        suffix = path.suffix.lower()
        if suffix in {".jsonl", ".ndjson"}:
            yield from read_jsonl(path, listed)
        elif suffix == ".csv":
            yield from read_csv(path, listed)
    for path in files:
        if path in documents and path.resolve() not in listed:
            yield _read_document(path, path.relative_to(root).as_posix())
        elif path not in documents and path.suffix.lower() not in RECORD_SUFFIXES:
            if path in sidecars:
                continue
            reason = f"unsupported file type {path.suffix.lower() or '(none)'}"
            if path.suffix.lower() == SIDECAR_SUFFIX:
                reason = "a .json file is read only as the sidecar of a document of the same name"
            yield Skipped(str(path), None, reason)


def _read_document(path: Path, article_id: str) -> Item:
    found = _document_fields(path, article_id)
    if isinstance(found, Skipped):
        return found
    sidecar = path.with_suffix(SIDECAR_SUFFIX)
    if sidecar.is_file():
        try:
            extra = json.loads(sidecar.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            return Skipped(str(sidecar), None, f"sidecar is not valid JSON: {error}")
        if not isinstance(extra, dict):
            return Skipped(str(sidecar), None, "sidecar must be a JSON object of article fields")
        found = {**found, **extra}
    return _parse(found, str(path), None)


def _document_fields(path: Path, article_id: str) -> dict[str, Any] | Skipped:
    """The fields a document file gives about itself, with `article_id` unless it names one."""
    text = _decode(path)
    if isinstance(text, Skipped):
        return text
    try:
        if path.suffix.lower() in HTML_SUFFIXES:
            fields = html_fields(text)
        else:
            saved = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            fields = text_fields(text, saved)
    except InvalidArticleError as error:
        return Skipped(str(path), None, str(error))
    if not str(fields.get("text", "")).strip():
        return Skipped(str(path), None, "field 'text': the file has no text")
    if not fields.get("title"):
        fields["title"] = title_from_name(path.name)
    return {"id": article_id, **fields}
