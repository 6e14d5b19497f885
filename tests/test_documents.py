"""Metadata from real files: front matter, datelines, bylines, sidecars, manifests, HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lede.indexer.documents import looks_like_html, text_fields, title_from_name
from lede.indexer.errors import InvalidArticleError
from lede.indexer.header_lines import byline_author, line_date, wire_dateline
from lede.indexer.models import Article
from lede.indexer.sources import Skipped, read_source

SAVED_FROM_THE_WEB = """date 2020-10-13 Harbor City
Harbor Festival Moves to May After Storm Damage
By Jane Doe | Staff Writer
Photo: Tom Roe / Harbor Daily
The city's spring festival will open on May 9 instead of April 18, organisers said.
The pier needs repairs after last week's storm.
"""

FRONT_MATTER = """---
title: The Lantern Parade Returns
date: 2021-06-05 18:30:00
authors: [Ana Ruiz, Ben Cole]
tags: [festival, harbor]
section: Culture
---
# A heading that is not the title

The lantern parade returns to the harbor this weekend.
"""


def _articles(path: Path) -> tuple[dict[str, Article], list[Skipped]]:
    items = list(read_source(path))
    return (
        {i.id: i for i in items if isinstance(i, Article)},
        [i for i in items if isinstance(i, Skipped)],
    )


def test_a_page_saved_as_text_gives_its_title_date_and_author() -> None:
    fields = text_fields(SAVED_FROM_THE_WEB)
    assert fields["title"] == "Harbor Festival Moves to May After Storm Damage"
    assert fields["published_at"].isoformat() == "2020-10-13T00:00:00"
    assert fields["author"] == "Jane Doe"
    assert fields["text"] == SAVED_FROM_THE_WEB  # offsets point into the whole file


def test_front_matter_fields_win_and_the_body_is_stored() -> None:
    fields = text_fields(FRONT_MATTER)
    assert fields["title"] == "The Lantern Parade Returns"
    assert fields["published_at"].isoformat() == "2021-06-05T18:30:00"
    assert fields["author"] == "Ana Ruiz, Ben Cole"
    assert fields["tags"] == ["festival", "harbor"]
    assert fields["metadata"] == {"section": "Culture"}
    assert fields["text"].startswith("# A heading")
    assert "---" not in fields["text"]


def test_bad_front_matter_names_the_field_or_line() -> None:
    with pytest.raises(InvalidArticleError, match="field 'date'"):
        text_fields("---\ndate: some day soon\n---\nBody.")
    with pytest.raises(InvalidArticleError, match=r"not valid YAML \(line \d\)"):
        text_fields("---\ntitle: [unclosed\n---\nBody.")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("date 2020-10-13 Rome", "2020-10-13"),
        ("Posted on October 13, 2020 by Staff", "2020-10-13"),
        ("Published: 13 Oct 2020", "2020-10-13"),
        ("Updated Oct. 14, 2020 at 5:30 pm", "2020-10-14"),
        ("Tuesday, Oct. 13, 2020", "2020-10-13"),
        ("The deal closed on 2020-10-13 after talks.", None),  # a sentence with a date
        ("Harbor Festival Moves to May", None),
    ],
)
def test_date_lines(line: str, expected: str | None) -> None:
    found = line_date(line)
    assert (found.date().isoformat() if found else None) == expected


def test_wire_datelines_give_the_agency_and_the_date() -> None:
    dated = wire_dateline("ROME, Oct. 13, 2020 (Reuters) - Italy's government said")
    assert dated is not None and dated[0] is not None and dated[0].year == 2020
    assert dated[1:] == ("Reuters", False)
    undated = wire_dateline("NEW YORK, March 2 (AP) — Stocks rose")
    assert undated == (None, "AP", False)  # no year, and nothing to take one from
    fields = text_fields("ROME, Oct. 13 (Reuters) - Italy's government said on Tuesday.")
    assert fields["source"] == "Reuters" and "published_at" not in fields
    assert "title" not in fields  # the story's first line is not a headline


def test_a_dateline_without_its_year_takes_it_from_the_file_time(tmp_path: Path) -> None:
    import os
    from datetime import datetime

    story = "ROME, Oct. 13 (Reuters) - Italy's government said on Tuesday it would act.\n"
    for name, saved in (("late.txt", "2020-11-02"), ("early.txt", "2020-10-01")):
        path = tmp_path / name
        path.write_text(story)
        stamp = datetime.fromisoformat(saved + "T12:00:00+00:00").timestamp()
        os.utime(path, (stamp, stamp))
    articles, skipped = _articles(tmp_path)
    assert not skipped
    for name, year in (("late.txt", 2020), ("early.txt", 2019)):
        article = articles[name]
        assert article.published_iso == f"{year}-10-13T00:00:00Z"
        assert article.source == "Reuters"
        assert article.metadata == {"published_at_inferred": "year from the file's time"}


def test_bylines() -> None:
    assert byline_author("By Jane Doe") == "Jane Doe"
    assert byline_author("BY MARIA DE LA CRUZ and Tom Roe") == "MARIA DE LA CRUZ and Tom Roe"
    assert byline_author("Author: Li Wei - Reporter") == "Li Wei"
    assert byline_author("By the end of the year, prices had doubled.") is None


def test_title_falls_back_to_the_file_name(tmp_path: Path) -> None:
    assert title_from_name("2020/rome-floods_day1.txt") == "rome floods day1"
    (tmp_path / "long-first-line.txt").write_text("word " * 80 + "\nSecond line.")
    (tmp_path / "only-header.txt").write_text("By Jane Doe\n" + "The story. " * 40)
    articles, skipped = _articles(tmp_path)
    assert not skipped
    assert articles["long-first-line.txt"].title == "long first line"
    assert articles["only-header.txt"].title == "only header"  # story line > 250 characters
    assert articles["only-header.txt"].author == "Jane Doe"


def test_sidecar_fields_override_and_are_not_read_as_articles(tmp_path: Path) -> None:
    (tmp_path / "festival.txt").write_text(SAVED_FROM_THE_WEB)
    (tmp_path / "festival.json").write_text(
        json.dumps(
            {"url": "https://harbor.example/festival", "tags": ["events"], "author": "J. D."}
        )
    )
    (tmp_path / "orphan.json").write_text("{}")
    (tmp_path / "broken.txt").write_text("Broken\nText.")
    (tmp_path / "broken.json").write_text("{not json")
    articles, skipped = _articles(tmp_path)
    assert set(articles) == {"festival.txt"}
    festival = articles["festival.txt"]
    assert festival.url == "https://harbor.example/festival" and festival.tags == ("events",)
    assert festival.author == "J. D." and festival.published_iso == "2020-10-13T00:00:00Z"
    reasons = {Path(s.source).name: s.reason for s in skipped}
    assert reasons["orphan.json"].startswith("a .json file is read only as the sidecar")
    assert reasons["broken.json"].startswith("sidecar is not valid JSON")


def test_manifest_rows_name_files_and_give_fields(tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text(SAVED_FROM_THE_WEB)
    (tmp_path / "texts" / "b.md").write_text(FRONT_MATTER)
    (tmp_path / "manifest.csv").write_text(
        "path,id,source,published_at\n"
        "texts/a.txt,festival,Harbor Daily,\n"
        "texts/b.md,,,2021-06-06\n"
        "texts/missing.txt,x,,\n"
    )
    articles, skipped = _articles(tmp_path)
    # Each listed file is read once, from the manifest, not again by the directory walk.
    assert set(articles) == {"festival", "texts/b.md"}
    assert articles["festival"].source == "Harbor Daily"
    assert articles["festival"].title.startswith("Harbor Festival")
    assert articles["texts/b.md"].published_iso == "2021-06-06T00:00:00Z"  # the row wins
    assert [(s.line, s.reason) for s in skipped] == [
        (4, "field 'path': no file texts/missing.txt beside the manifest")
    ]
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(json.dumps({"path": "texts/a.txt", "tags": ["x"]}) + "\n")
    (article,) = [i for i in read_source(jsonl) if isinstance(i, Article)]
    assert article.id == "texts/a.txt" and article.tags == ("x",)


def test_html_is_detected() -> None:
    assert looks_like_html("<!DOCTYPE html><html><body><p>x</p></body></html>")
    assert looks_like_html("<div><p>One</p><p>Two</p></div>")
    assert not looks_like_html("Use the <p> tag for paragraphs and <div> for blocks.")
    assert not looks_like_html(SAVED_FROM_THE_WEB)
