"""Bad input to the indexer: every bad item gets its own error, the rest is indexed, and
nothing already stored is lost (the `lede index` command with the real model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lede.eval.local_server import run_lede as lede
from lede.indexer.index import LedeIndex
from lede.service.engine import SearchEngine

pytestmark = pytest.mark.model
GOOD = "The river cleanup collected two tonnes of rubbish near the old mill."


@pytest.fixture
def base_index(tmp_path: Path) -> Path:
    """An index holding three articles before any bad input arrives."""
    source = tmp_path / "base.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"base-{i}", "title": f"Base {i}", "text": f"{GOOD} Day {i}."}) + "\n"
            for i in range(3)
        )
    )
    index = tmp_path / "index"
    assert lede("index", str(source), "--index", str(index)).returncode == 0
    return index


def _index_json(index: Path, *sources: Path) -> tuple[int, dict[str, object]]:
    completed = lede("index", *map(str, sources), "--index", str(index), "--json")
    return completed.returncode, json.loads(completed.stdout)


def _stored(index: Path) -> set[str]:
    with LedeIndex.open(index) as opened:
        return set(opened.store.article_ids())


def _reasons(report: dict[str, object]) -> dict[tuple[str, int | None], str]:
    skipped = report["skipped"]
    assert isinstance(skipped, list)
    return {(Path(s["source"]).name, s["line"]): s["reason"] for s in skipped}


def test_bad_records_in_jsonl_and_csv(tmp_path: Path, base_index: Path) -> None:
    jsonl = tmp_path / "mixed.jsonl"
    with open(jsonl, "wb") as handle:
        handle.write(json.dumps({"id": "good-1", "text": GOOD}).encode() + b"\n")
        handle.write(b'{"id": "bad-utf8", "text": "caf\xe9 au lait"}\n')  # Latin-1, not UTF-8
        handle.write(json.dumps({"id": "empty", "text": ""}).encode() + b"\n")
        handle.write(json.dumps({"id": "blank", "text": "   \n\t "}).encode() + b"\n")
        handle.write(json.dumps({"id": "huge", "text": "word " * 2_000_001}).encode() + b"\n")
        handle.write(json.dumps({"id": "dup", "text": GOOD + " First."}).encode() + b"\n")
        handle.write(json.dumps({"id": "dup", "text": GOOD + " Second."}).encode() + b"\n")
        handle.write(json.dumps({"id": " padded", "text": GOOD}).encode() + b"\n")
        handle.write(json.dumps({"id": "../../etc/passwd", "text": GOOD + " Path."}).encode())
        handle.write(b"\n")
        handle.write(json.dumps({"id": "a/b\\c?d#e", "text": GOOD + " Slashes."}).encode() + b"\n")
        handle.write(b'{"id": "truncated", "text": "The line stops in the mid')  # no newline
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text(
        "id,title,text\n"
        f'good-2,Fine,"{GOOD}"\n'
        "short,only two\n"
        f'long,"a","b",extra\n'
        f'quoted,Open,"never closed {GOOD}\n'
    )
    code, report = _index_json(base_index, jsonl, csv_file)
    assert code == 1  # some records skipped, the rest indexed
    reasons = _reasons(report)
    assert "UTF-8" in reasons[("mixed.jsonl", 2)]
    assert "text" in reasons[("mixed.jsonl", 3)] and "text" in reasons[("mixed.jsonl", 4)]
    assert "limit is 1,000,000" in reasons[("mixed.jsonl", 5)]
    assert "duplicate id 'dup'" in reasons[("mixed.jsonl", None)]
    assert "whitespace" in reasons[("mixed.jsonl", 8)]
    assert "JSON" in reasons[("mixed.jsonl", 11)]
    assert "fewer fields" in reasons[("rows.csv", 3)]
    assert "more fields" in reasons[("rows.csv", 4)]
    assert any(name == "rows.csv" and line and line >= 5 for name, line in reasons)
    stored = _stored(base_index)
    assert {"base-0", "base-1", "base-2", "good-1", "good-2", "dup"} <= stored
    assert {"../../etc/passwd", "a/b\\c?d#e"} <= stored  # ids are opaque strings
    assert not {"bad-utf8", "empty", "blank", "huge", " padded", "truncated"} & stored
    # Path-like ids never become paths: nothing was written outside the index directory.
    assert {p.name for p in tmp_path.iterdir()} == {
        "base.jsonl",
        "index",
        "mixed.jsonl",
        "rows.csv",
    }
    with LedeIndex.open(base_index) as opened:
        assert opened.store.get_article("dup").text.endswith("First.")  # type: ignore[union-attr]
        hits = SearchEngine(opened).search("river cleanup rubbish", k=20).hits
        assert {"base-0", "base-1", "base-2"} <= {hit.record.article_id for hit in hits}


def test_bad_files_in_a_source_directory(tmp_path: Path, base_index: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text(f"# Mill\n\n{GOOD}\n")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02 not text \x00")
    (folder / "latin1.txt").write_bytes("na\xefve caf\xe9".encode("latin-1"))
    (folder / "empty.txt").write_text("")
    (folder / "no-text.html").write_text("<html><head><script>var a=1;</script></head></html>")
    (folder / "styled.htm").write_text("<html><body><style>p{}</style>   </body></html>")
    code, report = _index_json(base_index, folder)
    assert code == 1
    reasons = {Path(name).name: reason for (name, _), reason in _reasons(report).items()}
    assert "unsupported file type .png" in reasons["image.png"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "text" in reasons["empty.txt"]
    assert "no article text" in reasons["no-text.html"]
    assert "no article text" in reasons["styled.htm"]
    assert report["added"] == 1
    assert _stored(base_index) == {"base-0", "base-1", "base-2", "good.md"}


def test_a_source_that_is_not_there_changes_nothing(tmp_path: Path, base_index: Path) -> None:
    before = _stored(base_index)
    completed = lede("index", str(tmp_path / "missing.jsonl"), "--index", str(base_index))
    assert completed.returncode == 2 and "does not exist" in completed.stderr
    assert _stored(base_index) == before
