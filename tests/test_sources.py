"""Reading JSONL, CSV, BEIR corpora and directories; bad records are skipped and named."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from lede.indexer.errors import SourceError
from lede.indexer.models import Article
from lede.indexer.sources import Skipped, read_source
from tests.conftest import DATASETS


def _split(items: list[Article | Skipped]) -> tuple[list[Article], list[Skipped]]:
    return [i for i in items if isinstance(i, Article)], [
        i for i in items if isinstance(i, Skipped)
    ]


def test_jsonl_reports_bad_lines_by_number_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        b'{"id": "1", "text": "Fine."}\n'
        b"{not json\n"
        b"\n"
        b'{"id": "3"}\n'
        b'{"id": "4", "text": "Bad \xff byte"}\n'
        b'["array"]\n'
        b'{"_id": "6", "title": "BEIR", "text": "Also fine."}\n'
        b'{"id": "7", "text": "truncated'
    )
    articles, skipped = _split(list(read_source(path)))
    assert [a.id for a in articles] == ["1", "6"]
    assert [(s.line, s.reason.split(":")[0]) for s in skipped] == [
        (2, "invalid JSON"),
        (4, "field 'text'"),
        (5, "not valid UTF-8 at byte 25"),
        (6, "expected a JSON object, got list"),
        (8, "invalid JSON"),
    ]


def test_csv_rows_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "id,title,text,tags,published_at\n"
        'a,Title A,"Text, with comma.",x;y,2021-01-02\n'
        "b,,,,\n"
        "c,Title C,Text C.,z,not-a-date\n"
        "d,Title D,Text D.,z,2021-01-02,extra\n"
        '"e","multi","line\ntext",,\n'
    )
    articles, skipped = _split(list(read_source(path)))
    assert [a.id for a in articles] == ["a", "e"]
    assert articles[0].tags == ("x", "y") and articles[1].text == "line\ntext"
    assert [s.line for s in skipped] == [3, 4, 5]
    bad_header = tmp_path / "b.csv"
    bad_header.write_text("title,body\nx,y\n")
    assert "must name" in _split(list(read_source(bad_header)))[1][0].reason


def test_directory_of_text_markdown_and_html(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# Heading A\n\nBody of A.")
    (tmp_path / "b.txt").write_text("Title B\nBody of B.")
    (tmp_path / "c.html").write_text(
        "<html><head><title>Page C</title><meta name='date' content='2021-05-06'></head>"
        "<body><article><h1>Page C</h1>"
        + "<p>This paragraph of the article has enough words to count as main text. </p>" * 5
        + "</article></body></html>"
    )
    (tmp_path / "empty.html").write_text(
        "<html><head><title>Only</title></head><body> </body></html>"
    )
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe not utf-8")
    (tmp_path / ".hidden.txt").write_text("ignored")
    articles, skipped = _split(list(read_source(tmp_path)))
    by_id = {a.id: a for a in articles}
    assert set(by_id) == {"notes/a.md", "b.txt", "c.html"}
    assert by_id["notes/a.md"].title == "Heading A"
    assert by_id["b.txt"].title == "Title B"
    assert by_id["c.html"].title == "Page C"
    assert by_id["c.html"].published_iso == "2021-05-06T00:00:00Z"
    assert "enough words" in by_id["c.html"].text
    reasons = {Path(s.source).name: s.reason for s in skipped}
    assert reasons == {
        "empty.html": "no article text found in the HTML",
        "blob.bin": "unsupported file type .bin",
        "bad.txt": "not valid UTF-8 at byte 0",
    }


def test_missing_and_unsupported_sources_raise(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        list(read_source(tmp_path / "nope.jsonl"))
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(SourceError, match=r"unsupported file type \.pdf"):
        list(read_source(tmp_path / "x.pdf"))


@pytest.mark.skipif(not (DATASETS / "scifact").exists(), reason="../shared/datasets absent")
def test_beir_corpus_reads_as_is() -> None:
    items = list(itertools.islice(read_source(DATASETS / "scifact" / "corpus.jsonl"), 200))
    articles, skipped = _split(items)
    assert len(articles) == 200 and not skipped
    assert articles[0].title and articles[0].text
