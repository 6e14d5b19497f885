"""The search page in a real headless Chromium (Debian's) driven by Playwright, against a real
uvicorn server: search, filters, ask, citations, keyboard use, phone width, no injection."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lede.indexer.encoders.embedder import SentenceTransformerEmbedder
from lede.indexer.index import LedeIndex
from lede.indexer.models import Article
from lede.service.settings import Settings
from tests.server import running_server

pytestmark = [pytest.mark.model, pytest.mark.browser, pytest.mark.server]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EVIL = Article(
    id="evil",
    title="<script>window.__pwned = 1</script> Harbour festival <b>bold</b>",
    text='The harbour festival had <img src=x onerror="window.__pwned=2"> fireworks at sea.',
    url="javascript:alert(1)",
    source="Prank Gazette",
)

NO_URL = Article(
    id="ferry-notes",
    title="Lantern Island ferry notes",
    text="The ferry to Lantern Island leaves the harbour at seven every Sunday morning. "
    "Tickets cost four pounds.",
    source="Harbour Notes",
)

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def base_url(
    tmp_path_factory: pytest.TempPathFactory,
    real_embedder: SentenceTransformerEmbedder,
    sample_articles: list[Article],
) -> Iterator[str]:
    path = tmp_path_factory.mktemp("page") / "index"
    with LedeIndex.create(path, embedder=real_embedder) as index:
        index.add([*sample_articles, EVIL, NO_URL])
    with running_server(Settings(index=path)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object, base_url: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(base_url + "/")
    yield page
    context.close()


def test_search_shows_titles_dates_highlights_and_links(page: object) -> None:
    p = page  # type: ignore[assignment]
    p.fill("#query", "Tom Cruise car chase in Rome")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    p.wait_for_selector("#results .hit")  # type: ignore[attr-defined]
    first = p.locator("#results .hit").first  # type: ignore[attr-defined]
    assert "Mission: Impossible" in first.locator("h3").inner_text()
    assert "2020-10-14" in first.locator(".meta").inner_text()
    assert first.locator("h3 a").get_attribute("href").startswith("https://news.example.org/")
    assert first.locator("mark").count() >= 1
    assert " matches in " in p.inner_text("#status")  # type: ignore[attr-defined]


def test_source_and_date_filters(page: object) -> None:
    p = page  # type: ignore[assignment]
    p.wait_for_function("document.querySelectorAll('#source option').length > 3")  # type: ignore[attr-defined]
    p.select_option("#source", "Sports Desk")  # type: ignore[attr-defined]
    p.fill("#since", "2021-01-01")  # type: ignore[attr-defined]
    p.fill("#query", "record")  # type: ignore[attr-defined]
    p.click("#search-button")  # type: ignore[attr-defined]
    p.wait_for_selector("#results .hit")  # type: ignore[attr-defined]
    metas = p.locator("#results .meta").all_inner_texts()  # type: ignore[attr-defined]
    assert metas and all("Sports Desk" in m and m.split(" · ")[1] >= "2021-01-01" for m in metas)


def test_ask_with_keyboard_only_and_follow_a_citation(page: object) -> None:
    p = page  # type: ignore[assignment]
    p.keyboard.type("Who plays Ethan Hunt in Mission: Impossible 7?")  # type: ignore[attr-defined]  # autofocus
    p.keyboard.press("Tab")  # type: ignore[attr-defined]  # Search
    p.keyboard.press("Tab")  # type: ignore[attr-defined]  # Ask
    assert p.evaluate("document.activeElement.id") == "ask-button"  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    # Either outcome ends "Thinking…": an answer, an abstention or an error, which the status
    # line names (a loaded CI machine once took longer than the default 30 s here).
    p.wait_for_function(  # type: ignore[attr-defined]
        "(t => t !== '' && !t.startsWith('Thinking'))"
        "(document.getElementById('status').textContent)",
        timeout=120_000,
    )
    status = p.inner_text("#status")  # type: ignore[attr-defined]
    assert status.startswith("Answer with"), status
    assert p.locator("#answer-panel:not([hidden]) #citations li").count() >= 1  # type: ignore[attr-defined]
    assert "Tom Cruise" in p.inner_text("#answer-text")  # type: ignore[attr-defined]
    short = p.inner_text("#answer-text strong.short-answer")  # type: ignore[attr-defined]
    assert short == "Tom Cruise"
    marker = p.locator("#answer-text a.cite-marker").first  # type: ignore[attr-defined]
    assert marker.inner_text() == "[1]"
    marker.focus()
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    assert p.evaluate("location.hash") == "#cite-1"  # type: ignore[attr-defined]
    citation = p.locator("#cite-1")  # type: ignore[attr-defined]
    assert citation.locator("a").first.get_attribute("href") == (
        "https://news.example.org/rome-daily-wire/mi7-rome-cruise-atwell"
    )
    citation.locator("button.show-passage").focus()
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    focused = p.evaluate("document.activeElement.dataset.chunkId")  # type: ignore[attr-defined]
    assert focused == "mi7-rome-cruise-atwell#0"


def test_indexed_markup_renders_as_text_and_never_runs(page: object) -> None:
    p = page  # type: ignore[assignment]
    p.fill("#query", "harbour festival fireworks")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    p.wait_for_selector("#results .hit")  # type: ignore[attr-defined]
    first = p.locator("#results .hit").first  # type: ignore[attr-defined]
    assert "<script>window.__pwned = 1</script>" in first.locator("h3").inner_text()
    assert '<img src=x onerror="window.__pwned=2">' in first.locator(".passage").inner_text()
    assert first.locator("h3 a").count() == 0  # a javascript: url is not made a link
    assert p.evaluate("window.__pwned") is None  # type: ignore[attr-defined]
    assert p.locator("#results script, #results img, #results b").count() == 0  # type: ignore[attr-defined]


def test_phone_width_layout_and_screenshot(browser: object, base_url: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740})  # type: ignore[attr-defined]
    p = context.new_page()
    p.goto(base_url + "/")
    p.fill("#query", "When will Mission: Impossible 7 be released?")
    p.click("#ask-button")
    p.wait_for_selector("#answer-panel:not([hidden])")
    assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot = tmp_path / "screenshot-phone.png"
    p.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    context.close()
    wide = browser.new_context(viewport={"width": 1100, "height": 900})  # type: ignore[attr-defined]
    p = wide.new_page()
    p.goto(base_url + "/")
    p.fill("#query", "Who plays Ethan Hunt in Mission: Impossible 7?")
    p.click("#ask-button")
    p.wait_for_selector("#answer-panel:not([hidden]) #citations li")
    shot = tmp_path / "screenshot.png"
    p.screenshot(path=str(shot), full_page=False)
    wide.close()
    target = os.environ.get("LEDE_SCREENSHOT_DIR")
    if target:
        shutil.copy(shot, Path(target) / "screenshot.png")


def test_the_url_keeps_the_search_and_back_returns_to_it(page: object, base_url: str) -> None:
    p = page  # type: ignore[assignment]
    p.wait_for_function("document.querySelectorAll('#source option').length > 3")  # type: ignore[attr-defined]
    p.select_option("#mode", "bm25")  # type: ignore[attr-defined]
    p.fill("#query", "Rome")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    p.wait_for_selector("#results .hit")  # type: ignore[attr-defined]
    assert p.evaluate("location.search") == "?q=Rome&mode=bm25"  # type: ignore[attr-defined]
    status = p.inner_text("#status")  # type: ignore[attr-defined]
    assert " matches in " in status and "1 results" not in status
    first = p.locator("#results .hit h3").first.inner_text()  # type: ignore[attr-defined]
    # Enter on a question answers it (and the URL says so).
    p.fill("#query", "Who plays Ethan Hunt in Mission: Impossible 7?")  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    p.wait_for_selector("#answer-panel:not([hidden]) #citations li")  # type: ignore[attr-defined]
    assert "ask=1" in p.evaluate("location.search")  # type: ignore[attr-defined]
    assert " citation" in p.inner_text("#status")  # type: ignore[attr-defined]
    assert "citation(s)" not in p.inner_text("#status")  # type: ignore[attr-defined]
    p.go_back()  # type: ignore[attr-defined]
    p.wait_for_function("document.getElementById('answer-panel').hidden")  # type: ignore[attr-defined]
    assert p.input_value("#query") == "Rome" and p.input_value("#mode") == "bm25"  # type: ignore[attr-defined]
    p.wait_for_selector("#results .hit")  # type: ignore[attr-defined]
    assert p.locator("#results .hit h3").first.inner_text() == first  # type: ignore[attr-defined]
    # A shared link opens on the same search.
    other = p.context.new_page()  # type: ignore[attr-defined]
    other.goto(base_url + "/?q=Rome&mode=bm25")
    other.wait_for_selector("#results .hit")
    assert other.locator("#results .hit h3").first.inner_text() == first
    assert other.input_value("#mode") == "bm25"
    other.close()


def test_the_page_says_how_much_is_indexed_and_links_only_real_urls(page: object) -> None:
    p = page  # type: ignore[assignment]
    p.wait_for_function(  # type: ignore[attr-defined]
        "document.getElementById('index-size').textContent.length > 0"
    )
    assert p.inner_text("#index-size") == "45 articles indexed."  # type: ignore[attr-defined]
    p.fill("#query", "How much does a ticket for the Lantern Island ferry cost?")  # type: ignore[attr-defined]
    p.click("#ask-button")  # type: ignore[attr-defined]
    p.wait_for_selector("#answer-panel:not([hidden]) #citations li")  # type: ignore[attr-defined]
    cited = p.locator("#citations li").first  # type: ignore[attr-defined]
    assert cited.locator("span.cite-title").inner_text() == "Lantern Island ferry notes"
    assert p.locator("a[href='#']").count() == 0  # type: ignore[attr-defined]
    cited.locator("button.show-passage").click()
    focused = p.evaluate("document.activeElement.dataset.chunkId")  # type: ignore[attr-defined]
    assert focused == "ferry-notes#0"
    # Ask with an empty box says what to do instead of doing nothing.
    p.fill("#query", "")  # type: ignore[attr-defined]
    p.click("#ask-button")  # type: ignore[attr-defined]
    assert p.inner_text("#status") == "Type a question first."  # type: ignore[attr-defined]
