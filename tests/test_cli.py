"""The `lede` command as users run it: a real process, the real bundled model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lede.eval.local_server import run_lede as lede
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.model


def lede_json(*args: str) -> Any:
    completed = lede(*args, "--json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "index"
    report = lede_json("index", str(EXAMPLES / "articles.jsonl"), "--index", str(path))
    assert report["added"] == 43 and report["skipped"] == []
    assert set(report) == {"added", "updated", "unchanged", "deleted", "chunks", "skipped"}
    return path


def test_reindexing_unchanged_articles_does_nothing(cli_index: Path) -> None:
    report = lede_json("index", str(EXAMPLES / "articles.jsonl"), "--index", str(cli_index))
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 0, 43)


def test_index_names_a_bad_device_and_writes_nothing(tmp_path: Path) -> None:
    index = tmp_path / "index"
    completed = lede(
        "index", str(EXAMPLES / "articles.jsonl"), "--index", str(index), "--device", "tpu"
    )
    assert completed.returncode == 2
    assert "--device must be cpu, cuda or auto; got 'tpu'" in completed.stderr
    assert not index.exists()


def test_search_json_contract_in_every_mode(cli_index: Path) -> None:
    for mode in ("hybrid", "dense", "bm25"):
        result = lede_json(
            "search", "Who plays Ethan Hunt?", "--index", str(cli_index), "--mode", mode, "-k", "3"
        )
        assert set(result) == {"hits", "total", "took_ms"}
        hit = result["hits"][0]
        assert hit["article_id"] == "mi7-rome-cruise-atwell"
        assert {
            "article_id",
            "chunk_id",
            "title",
            "url",
            "published_at",
            "source",
            "text",
            "start",
            "end",
            "score",
            "scores",
        } <= set(hit)
        assert set(hit["scores"]) == {"bm25", "dense"}
        ran = {"hybrid": {"bm25", "dense"}, "dense": {"dense"}, "bm25": {"bm25"}}[mode]
        for name, value in hit["scores"].items():
            assert (value is not None) == (name in ran)
        article = json.loads(
            next(
                line
                for line in (EXAMPLES / "articles.jsonl").read_text().splitlines()
                if hit["article_id"] in line
            )
        )
        assert article["text"][hit["start"] : hit["end"]] == hit["text"]


def test_search_filters(cli_index: Path) -> None:
    result = lede_json(
        "search",
        "record",
        "--index",
        str(cli_index),
        "--source",
        "Sports Desk",
        "--since",
        "2021-01-01",
        "-k",
        "10",
    )
    assert result["hits"]
    assert all(h["source"] == "Sports Desk" and h["published_at"] >= "2021" for h in result["hits"])
    tagged = lede_json("search", "film", "--index", str(cli_index), "--tag", "casting")
    assert {h["article_id"] for h in tagged["hits"]} == {"mi7-cast-returns"}


def test_bad_lines_are_reported_and_the_rest_indexed(tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    source.write_text('{"id": "ok", "text": "A good article about rivers."}\n{oops\n{"id": "x"}\n')
    completed = lede("index", str(source), "--index", str(tmp_path / "index"), "--json")
    assert completed.returncode == 1
    report = json.loads(completed.stdout)
    assert report["added"] == 1
    assert [(s["line"], s["source"]) for s in report["skipped"]] == [
        (2, str(source)),
        (3, str(source)),
    ]
    plain = lede("index", str(source), "--index", str(tmp_path / "index"))
    assert plain.returncode == 1 and "skipped 2" in plain.stdout and f"{source}:2" in plain.stderr


def test_delete_and_info(tmp_path: Path) -> None:
    path = tmp_path / "index"
    lede_json("index", str(EXAMPLES / "articles.jsonl"), "--index", str(path))
    deleted = lede("delete", "mi7-rome-cruise-atwell", "nope", "--index", str(path), "--json")
    # Like HTTP's 404: an id that is not there is an error (exit 1), the others are deleted.
    assert deleted.returncode == 1 and "not found: nope" in deleted.stderr
    assert json.loads(deleted.stdout) == {"deleted": 1, "missing": ["nope"]}
    assert lede("delete", "nope", "--index", str(path)).returncode == 1
    hits = lede_json("search", "Tom Cruise", "--index", str(path), "-k", "50")["hits"]
    assert "mi7-rome-cruise-atwell" not in {h["article_id"] for h in hits}
    info = lede_json("info", "--index", str(path))
    assert info["counts"]["articles"] == 42
    assert info["manifest"]["model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_errors_exit_nonzero_with_a_message(tmp_path: Path, cli_index: Path) -> None:
    missing = lede("search", "x", "--index", str(tmp_path / "none"))
    assert missing.returncode == 2 and "is not a Lede index" in missing.stderr
    bad_mode = lede("search", "x", "--index", str(cli_index), "--mode", "fuzzy")
    assert bad_mode.returncode == 2 and "--mode must be one of" in bad_mode.stderr
    bad_date = lede("search", "x", "--index", str(cli_index), "--since", "last week")
    assert bad_date.returncode == 2 and "not an ISO 8601 date" in bad_date.stderr
    other_model = lede(
        "index",
        str(EXAMPLES / "articles.jsonl"),
        "--index",
        str(cli_index),
        "--model",
        "some/other-model",
    )
    assert other_model.returncode == 2 and "was built with model" in other_model.stderr


def _on_a_terminal(*args: str) -> tuple[int, str]:
    """Run `lede ARGS...` with stderr on a pseudo-terminal; its exit code and what it drew."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios
    import threading

    from lede.eval.local_server import LEDE

    master, slave = pty.openpty()
    # A terminal 30 x 120 (a bare pty is 0 x 0, where tqdm draws nothing).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    drawn = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            drawn.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    completed = subprocess.run(
        [LEDE, *args], stdout=subprocess.DEVNULL, stderr=slave, timeout=600, check=False
    )
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return completed.returncode, drawn.decode(errors="replace")


def test_index_draws_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    source = str(EXAMPLES / "articles.jsonl")
    code, drawn = _on_a_terminal("index", source, "--index", str(tmp_path / "a"))
    assert code == 0
    assert "indexing" in drawn and "43/43" in drawn and "chunks_per_s=" in drawn
    code, drawn = _on_a_terminal("index", source, "--index", str(tmp_path / "b"), "--quiet")
    assert code == 0 and "indexing" not in drawn and "added 43" not in drawn
    piped = lede("index", source, "--index", str(tmp_path / "c"))
    assert piped.returncode == 0 and "indexing" not in piped.stderr


@pytest.mark.server
def test_search_and_ask_can_use_a_running_server(cli_index: Path) -> None:
    import os
    import subprocess

    from lede.eval.local_server import LEDE
    from lede.service.settings import Settings
    from tests.server import running_server

    local_search = lede_json(
        "search", "Who plays Ethan Hunt?", "--index", str(cli_index), "-k", "3"
    )
    local_answer = lede_json("ask", "Who plays Ethan Hunt?", "--index", str(cli_index))
    with running_server(Settings(index=cli_index)) as url:
        remote_search = lede_json("search", "Who plays Ethan Hunt?", "--server", url, "-k", "3")
        env = {**os.environ, "LEDE_SERVER": url}
        completed = subprocess.run(
            [LEDE, "ask", "Who plays Ethan Hunt?", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        remote_answer = json.loads(completed.stdout)
        bad = lede("search", "   ", "--server", url)
        assert bad.returncode == 2 and "the server answered 422" in bad.stderr
    for local, remote in ((local_search, remote_search), (local_answer, remote_answer)):
        local.pop("took_ms")
        remote.pop("took_ms")
    assert remote_search == local_search
    assert remote_answer["answer"] == local_answer["answer"]
    assert remote_answer["citations"] == local_answer["citations"]
    down = lede("search", "x", "--server", "http://127.0.0.1:9")
    assert down.returncode == 2 and "cannot reach the Lede server" in down.stderr
    neither = lede("search", "x")
    assert neither.returncode == 2 and "give --index DIR, or --server URL" in neither.stderr


@pytest.mark.server
def test_serve_says_when_the_port_is_taken(cli_index: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = lede("serve", "--index", str(cli_index), "--port", str(port), timeout=60)
    assert completed.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in completed.stderr
    assert "serving" not in completed.stderr


def test_help_uses_plain_click_conventions() -> None:
    index_help = lede("index", "--help").stdout
    assert "Usage: lede index [OPTIONS] SOURCE..." in index_help
    assert "<bool>" not in index_help and "{" not in index_help
    assert "--index PATH" in index_help and "-q, --quiet " in index_help
    ask_help = lede("ask", "--help").stdout
    assert "--server URL" in ask_help and "LEDE_SERVER" in ask_help


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import sys

    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use it from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "examples").symlink_to(EXAMPLES)
    completed = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Tom Cruise" in completed.stdout


def test_the_product_cli_does_not_import_the_evaluation() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    probe = (
        "import sys, lede.service.cli, lede.service.http.app; "
        "print(sorted(m for m in sys.modules if m == 'lede.eval' or m.startswith('lede.eval.')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"
    # The evaluation joins `lede` as the `lede.commands` plugin.
    assert lede("eval", "--help").returncode == 0 and "relevance" in lede("eval", "--help").stdout
