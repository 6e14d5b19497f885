"""The HTTP service over real HTTP: a uvicorn server on 127.0.0.1, the real model."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lede.eval.local_server import LEDE
from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.files import WriteLock
from lede.indexer.index import LedeIndex
from lede.service.settings import Settings
from tests.server import free_port, running_server, wait_ready

pytestmark = [pytest.mark.model, pytest.mark.server]
KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def index_dir(sample_index_dir: Path) -> Path:
    return sample_index_dir


@pytest.fixture(scope="module")
def base_url(index_dir: Path) -> Iterator[str]:
    settings = Settings(
        index=index_dir,
        api_keys=[KEY],
        max_body_bytes=20_000,
        max_k=50,
        max_batch=5,
        write_timeout=1.0,
    )
    with running_server(settings) as url:
        yield url


def get(url: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}{path}", params=params, timeout=60)


def post(url: str, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=60)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


def test_operations_endpoints(base_url: str) -> None:
    assert get(base_url, "/health").json() == {"status": "ok"}
    ready = get(base_url, "/ready").json()
    assert ready["ready"] is True and ready["articles"] == 43
    assert get(base_url, "/docs").status_code == 200
    schema = get(base_url, "/openapi.json").json()
    assert {"/search", "/answer", "/articles", "/articles/{article_id}"} <= set(schema["paths"])
    get(base_url, "/search", query="rome")
    metrics = get(base_url, "/metrics").text
    assert 'lede_http_requests_total{method="GET",route="/search",status="200"}' in metrics
    assert "lede_http_request_duration_seconds_bucket" in metrics
    assert "lede_index_chunks 44.0" in metrics


def test_docs_are_served_offline_and_describe_each_route(base_url: str) -> None:
    import re

    for page in ("/docs", "/redoc"):
        html = get(base_url, page).text
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
        assert assets and all(a.startswith("/") for a in assets), assets  # no CDN
        for asset in assets:
            assert get(base_url, asset).status_code == 200
    schema = get(base_url, "/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    paths = schema["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert statuses("/health", "get") == {"200"}
    assert statuses("/search", "get") == {"200", "422", "503"}
    assert statuses("/articles/{article_id}", "get") == {"200", "404", "503"}
    assert {"401", "403", "409", "413", "507"} <= statuses("/articles", "post")
    assert "409" not in statuses("/articles/{article_id}", "put")
    assert paths["/articles"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in paths["/search"]["get"]  # reads need no key here


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_get_and_post_agree_and_match_the_engine(
    base_url: str, index_dir: Path, mode: str, real_embedder: SentenceTransformerEmbedder
) -> None:
    params = {"query": "film shoot in Rome", "mode": mode, "k": 5}
    by_get = get(base_url, "/search", **params).json()
    by_post = post(base_url, "/search", params).json()
    ids = [h["chunk_id"] for h in by_get["hits"]]
    assert ids == [h["chunk_id"] for h in by_post["hits"]] and len(ids) == 5
    from lede.service.engine import SearchEngine

    with LedeIndex.open(index_dir, embedder=real_embedder) as index:
        direct = SearchEngine(index).search("film shoot in Rome", mode=mode, k=5)  # type: ignore[arg-type]
    assert ids == [h.record.chunk_id for h in direct.hits]


def test_search_filters_group_and_highlights(base_url: str) -> None:
    response = httpx.get(
        f"{base_url}/search",
        params=[
            ("query", "record"),
            ("source", "Sports Desk"),
            ("source", "Culture Weekly"),
            ("since", "2021-01-01"),
            ("k", "20"),
        ],
        timeout=60,
    ).json()
    assert response["hits"]
    for hit in response["hits"]:
        assert hit["source"] in {"Sports Desk", "Culture Weekly"} and hit["published_at"] >= "2021"
    grouped = post(
        base_url, "/search", {"query": "Mission Impossible", "k": 10, "group": "article"}
    )
    articles = [h["article_id"] for h in grouped.json()["hits"]]
    assert len(articles) == len(set(articles))
    hit = post(base_url, "/search", {"query": "Ethan Hunt", "k": 1}).json()["hits"][0]
    article = get(base_url, f"/articles/{hit['article_id']}").json()
    spans = [article["text"][h["start"] : h["end"]] for h in hit["highlights"]]
    assert any("Ethan Hunt" in span for span in spans)


def test_answer_citations_quote_the_stored_text_exactly(base_url: str) -> None:
    response = post(
        base_url, "/answer", {"question": "Who plays Ethan Hunt in Mission: Impossible 7?"}
    )
    answer = response.json()
    assert set(answer) == {
        "answer",
        "answer_span",
        "confidence",
        "citations",
        "passages",
        "markdown",
        "took_ms",
    }
    assert "Tom Cruise" in answer["answer"] and 0 <= answer["confidence"] <= 1
    span = answer["answer_span"]
    article = get(base_url, f"/articles/{answer['citations'][0]['article_id']}").json()
    assert span["text"] == "Tom Cruise" == article["text"][span["start"] : span["end"]]
    for citation in answer["citations"]:
        article = get(base_url, f"/articles/{citation['article_id']}").json()
        assert article["text"][citation["start"] : citation["end"]] == citation["quote"]
    assert answer["citations"][0]["article_id"] == "mi7-rome-cruise-atwell"
    assert "[1]" in answer["markdown"]
    nothing = post(
        base_url, "/answer", {"question": "What is the boiling point of mercury?"}
    ).json()
    assert nothing["answer"] is None and nothing["citations"] == [] and nothing["passages"]
    assert nothing["answer_span"] is None


def test_writes_need_a_valid_key_and_are_visible_to_the_next_search(base_url: str) -> None:
    article = {
        "id": "hedgehogs",
        "title": "Hedgehog tunnels",
        "text": "Volunteers dug hedgehog tunnels under garden fences.",
    }
    assert_error(post(base_url, "/articles", article), 401, "unauthorized")
    assert_error(
        post(base_url, "/articles", article, {"Authorization": "Bearer wrong-key-0123456789"}), 401
    )
    assert_error(post(base_url, "/articles", article, {"Authorization": "Basic abc"}), 401)
    created = post(base_url, "/articles", article, AUTH).json()
    assert (created["added"], created["ids"]) == (1, ["hedgehogs"])
    hits = get(base_url, "/search", query="hedgehog tunnels", mode="bm25", k=1).json()["hits"]
    assert hits[0]["article_id"] == "hedgehogs"
    updated = httpx.put(
        f"{base_url}/articles/hedgehogs",
        json={"text": "Hedgehogs now use badger paths."},
        headers=AUTH,
        timeout=60,
    ).json()
    assert updated["updated"] == 1
    assert get(base_url, "/articles/hedgehogs").json()["text"] == "Hedgehogs now use badger paths."
    batch = {
        "articles": [
            {"id": f"b{i}", "text": f"Batch article number {i} about otters."} for i in range(3)
        ]
    }
    assert post(base_url, "/articles", batch, AUTH).json()["added"] == 3
    assert_error(httpx.delete(f"{base_url}/articles/b0", timeout=60), 401)
    assert httpx.delete(f"{base_url}/articles/b0", headers=AUTH, timeout=60).json() == {
        "deleted": "b0"
    }
    assert_error(
        httpx.delete(f"{base_url}/articles/b0", headers=AUTH, timeout=60), 404, "not_found"
    )
    hits = get(base_url, "/search", query="otters", mode="bm25", k=10).json()["hits"]
    assert {h["article_id"] for h in hits} == {"b1", "b2"}


PAGE = (
    "<!DOCTYPE html><html><head><title>Otter Count Rises | Harbor Daily</title>"
    "<meta name='author' content='Jane Doe'><meta name='date' content='2021-04-01'></head>"
    "<body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav><article><h1>Otter Count</h1>"
    + "<p>Volunteers counted forty-two otters along the estuary this spring. </p>" * 4
    + "</article><footer>Subscribe to our newsletter</footer></body></html>"
)


def test_html_bodies_are_extracted_like_html_files(base_url: str) -> None:
    for article_id, body in (
        ("otters-auto", {"text": PAGE}),
        ("otters-html", {"text": PAGE, "format": "html", "title": "Given title"}),
        ("otters-raw", {"text": PAGE, "format": "text"}),
    ):
        response = httpx.put(f"{base_url}/articles/{article_id}", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
    auto = get(base_url, "/articles/otters-auto").json()
    assert "<" not in auto["text"] and "forty-two otters" in auto["text"]
    assert "Subscribe" not in auto["text"] and "Home" not in auto["text"]
    assert auto["author"] == "Jane Doe" and auto["published_at"] == "2021-04-01T00:00:00Z"
    assert auto["title"].startswith("Otter Count")
    assert get(base_url, "/articles/otters-html").json()["title"] == "Given title"
    assert get(base_url, "/articles/otters-raw").json()["text"] == PAGE
    empty = httpx.put(
        f"{base_url}/articles/otters-empty",
        json={"text": "<html><head><title>Only</title></head><body> </body></html>"},
        headers=AUTH,
    )
    assert_error(empty, 422)
    assert "no article text" in empty.json()["error"]["message"]
    for article_id in ("otters-auto", "otters-html", "otters-raw"):
        httpx.delete(f"{base_url}/articles/{article_id}", headers=AUTH)


def test_every_error_status_has_the_one_shape(base_url: str, index_dir: Path) -> None:
    invalid_json = httpx.post(
        f"{base_url}/search",
        content=b"{nope",
        timeout=60,
        headers={"content-type": "application/json"},
    )
    assert_error(invalid_json, 400, "invalid_json")
    inverted = post(
        base_url, "/search", {"query": "x", "since": "2021-02-01", "until": "2021-01-01"}
    )
    assert inverted.status_code == 200 and inverted.json()["hits"] == []  # an empty range
    # JSON bodies are strict: what the schema calls invalid is refused, never coerced.
    assert_error(post(base_url, "/search", {"query": "rates", "k": "10"}), 422)
    assert_error(post(base_url, "/search", {"query": "rates", "highlight": 1}), 422)
    assert_error(post(base_url, "/answer", {"question": "rates?", "threshold": False}), 422)
    dated = {"id": "n", "text": "t", "published_at": 0}
    assert_error(post(base_url, "/articles", dated, AUTH), 422)
    assert_error(post(base_url, "/search", {"query": " \t "}), 422)
    assert_error(post(base_url, "/articles", {"id": " padded", "text": "t"}, AUTH), 422)
    assert_error(get(base_url, "/articles/missing"), 404, "not_found")
    assert_error(
        httpx.post(f"{base_url}/articles", content=b"x" * 30_000, headers=AUTH, timeout=60),
        413,
        "payload_too_large",
    )
    assert_error(get(base_url, "/search", query="x", k=0), 422, "validation_error")
    assert_error(get(base_url, "/search", query="x", k=51), 422)
    assert_error(get(base_url, "/search", query="x" * 1001), 422)
    assert_error(get(base_url, "/search", query="x", mode="fuzzy"), 422)
    assert_error(get(base_url, "/search", query="x", normalization="zscore"), 422)
    assert_error(post(base_url, "/articles", {"id": "a"}, AUTH), 422)
    assert_error(post(base_url, "/articles", {"text": "no id"}, AUTH), 422)
    too_many = {"articles": [{"id": f"m{i}", "text": "t"} for i in range(6)]}
    assert_error(post(base_url, "/articles", too_many, AUTH), 422)
    duplicate = {"articles": [{"id": "d", "text": "t"}, {"id": "d", "text": "u"}]}
    assert_error(post(base_url, "/articles", duplicate, AUTH), 409, "duplicate_id")
    assert get(base_url, "/articles/d").status_code == 404  # nothing of a refused batch stored
    with WriteLock(index_dir, timeout=5):  # another writer holds the index
        busy = post(base_url, "/articles", {"id": "late", "text": "Arrives while busy."}, AUTH)
    assert_error(busy, 503, "index_busy")
    not_allowed = httpx.request("PATCH", f"{base_url}/search", timeout=60)
    assert_error(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET, POST"
    schema = get(base_url, "/openapi.json").json()  # the configured limits are published
    search = schema["components"]["schemas"]["SearchBody"]["properties"]
    assert (search["k"]["maximum"], search["query"]["maxLength"]) == (50, 1000)


def _message(response: httpx.Response, status: int = 422) -> str:
    assert_error(response, status)
    return str(response.json()["error"]["message"])


def test_errors_name_the_field_and_what_to_do(base_url: str) -> None:
    # Limits read the same whichever side of the schema's bounds they fall on.
    for k in (51, 10_000):
        assert _message(get(base_url, "/search", query="x", k=k)) == (
            f"invalid request: k: is {k}; the limit is 50 (LEDE_MAX_K)"
        )
    blank = _message(post(base_url, "/search", {"query": " \t "}))
    assert blank == "invalid request: query: Value error, must contain text, not only whitespace"
    assert "[^" not in _message(get(base_url, "/search", query="   "))  # no raw regex
    # A body for one article gets that shape's errors only, not the batch's too.
    one = post(base_url, "/articles", {"id": "x", "txt": "typo"}, AUTH)
    assert _message(one).startswith("invalid request: text: Field required; txt: unknown field")
    assert "did you mean 'text'?" in _message(one)
    assert {p["field"] for p in one.json()["error"]["details"]} == {"text", "txt"}
    batch = post(base_url, "/articles", {"articles": [{"id": "x"}]}, AUTH)
    assert _message(batch) == "invalid request: articles.0.text: Field required"
    typo = get(base_url, "/search", query="x", tags="news")
    assert "unknown field 'tags'; did you mean 'tag'?" in _message(typo)
    # One value where a list is expected is a list of one, in a body as in a query string.
    single = post(base_url, "/search", {"query": "Rome", "tag": "no-such-tag"})
    assert single.status_code == 200 and single.json()["hits"] == []
    duplicate = {"articles": [{"id": "d", "text": "t"}, {"id": "d", "text": "u"}]}
    refused = post(base_url, "/articles", duplicate, AUTH)
    assert _message(refused, 409) == "duplicate ids in one batch: d; send each article once"
    too_many = {"articles": [{"id": f"m{i}", "text": "t"} for i in range(6)]}
    assert "(LEDE_MAX_BATCH): send several batches" in _message(
        post(base_url, "/articles", too_many, AUTH)
    )


def test_a_bug_is_a_500_in_the_one_shape_never_a_400(
    index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from lede.service.http.app import create_app

    settings = Settings(index=index_dir)
    app = create_app(settings)

    @app.get("/bug")
    def bug() -> None:
        raise ValueError("an internal invariant broke")

    with running_server(settings, app) as url:
        response = httpx.get(f"{url}/bug")
    assert_error(response, 500, "internal_error")
    assert "invariant" not in response.text  # the details stay in the log
    assert any("unhandled error on GET /bug" in r.getMessage() for r in caplog.records)


def test_an_oversized_article_is_told_to_split(index_dir: Path) -> None:
    settings = Settings(index=index_dir, api_keys=[KEY], max_body_bytes=3_000_000)
    with running_server(settings) as url:
        big = {"id": "big", "text": "word " * 220_000}
        message = _message(post(url, "/articles", big, AUTH))
    assert message.startswith("invalid request: text: Value error, is 1,100,000 characters")
    assert "split the article into parts" in message


def test_index_changes_from_another_process_appear_without_restart(
    base_url: str, index_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "new.jsonl"
    source.write_text(
        json.dumps({"id": "walrus", "text": "A walrus was seen on the harbour steps."}) + "\n"
    )
    completed = subprocess.run(
        [LEDE, "index", str(source), "--index", str(index_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    hits = get(base_url, "/search", query="walrus harbour", k=1).json()["hits"]
    assert hits[0]["article_id"] == "walrus"


def test_writes_are_refused_when_no_keys_are_configured(index_dir: Path) -> None:
    with running_server(Settings(index=index_dir)) as url:
        assert_error(post(url, "/articles", {"id": "z", "text": "t"}, AUTH), 403, "writes_disabled")
        assert get(url, "/search", query="rome").status_code == 200
    with running_server(Settings(index=index_dir, api_keys=[KEY], read_requires_key=True)) as url:
        assert_error(get(url, "/search", query="rome"), 401)
        assert (
            httpx.get(
                f"{url}/search", params={"query": "rome"}, headers=AUTH, timeout=60
            ).status_code
            == 200
        )


def test_lede_serve_command_runs_uvicorn_workers(index_dir: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [LEDE, "serve", "--index", str(index_dir), "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        answered = 0
        for _ in range(300):  # each worker warms up on its own: 503 + Retry-After until then
            hits = httpx.get(
                f"http://127.0.0.1:{port}/search", params={"query": "Rome"}, timeout=60
            )
            if hits.status_code == 200:
                assert hits.json()["hits"]
                answered += 1
                if answered == 10:
                    break
            else:
                assert hits.status_code == 503 and hits.headers["retry-after"] == "2"
                time.sleep(0.1)
        assert answered == 10
    finally:
        process.terminate()
        process.wait(timeout=30)
    missing = subprocess.run(
        [LEDE, "serve", "--index", str(index_dir.parent / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "is not a Lede index" in missing.stderr


def test_search_fusion_overrides(base_url: str) -> None:
    default = get(base_url, "/search", query="film shoot in Rome", k=5).json()["hits"]
    minmax = get(
        base_url, "/search", query="film shoot in Rome", k=5, normalization="minmax", alpha=0.5
    ).json()["hits"]
    assert default and minmax
    assert all(0.0 <= hit["score"] <= 1.0 for hit in default + minmax)
    assert [h["score"] for h in default] != [h["score"] for h in minmax]
