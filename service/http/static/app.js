// Lede's search page. Every piece of article data is inserted with textContent or
// createElement, never as HTML, so indexed content cannot inject markup or script.
"use strict";

const form = document.getElementById("search-form");
const queryInput = document.getElementById("query");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const answerPanel = document.getElementById("answer-panel");
const answerText = document.getElementById("answer-text");
const citationList = document.getElementById("citations");

function el(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function plural(count, word) {
  return `${count.toLocaleString("en")} ${word}${count === 1 ? "" : "s"}`;
}

function filters() {
  const params = new URLSearchParams();
  params.set("mode", document.getElementById("mode").value);
  const source = document.getElementById("source").value;
  if (source) params.append("source", source);
  const since = document.getElementById("since").value;
  const until = document.getElementById("until").value;
  if (since) params.set("since", since);
  if (until) params.set("until", until + "T23:59:59");
  return params;
}

// The page's state lives in its URL (?q=...&mode=...&source=...&since=...&until=...&ask=1),
// so a search can be shared or bookmarked and Back returns to the previous one.
function remember(action) {
  const state = new URLSearchParams();
  state.set("q", queryInput.value.trim());
  if (action === "ask") state.set("ask", "1");
  const mode = document.getElementById("mode").value;
  if (mode !== "hybrid") state.set("mode", mode);
  for (const key of ["source", "since", "until"]) {
    const value = document.getElementById(key).value;
    if (value) state.set(key, value);
  }
  const url = `?${state}`;
  if (url !== location.search) history.pushState(null, "", url);
}

function restore(event) {
  const state = new URLSearchParams(location.search);
  if (!event && !state.get("q")) return;  // a fresh page: nothing to restore
  queryInput.value = state.get("q") || "";
  document.getElementById("mode").value = state.get("mode") || "hybrid";
  const source = document.getElementById("source");
  const wanted = state.get("source") || "";
  if (wanted && ![...source.options].some((o) => o.value === wanted)) {
    source.append(el("option", { value: wanted }, wanted));
  }
  source.value = wanted;
  document.getElementById("since").value = state.get("since") || "";
  document.getElementById("until").value = state.get("until") || "";
  if (!queryInput.value) {
    results.replaceChildren();
    answerPanel.hidden = true;
    statusLine.textContent = "";
    return;
  }
  if (state.get("ask")) ask(null, false);
  else search(null, false);
}

function passageWithHighlights(hit) {
  const passage = el("p", { class: "passage" });
  let cursor = 0;
  const spans = (hit.highlights || [])
    .map((h) => [h.start - hit.start, h.end - hit.start])
    .filter(([s, e]) => s >= 0 && e <= hit.text.length && s < e)
    .sort((a, b) => a[0] - b[0]);
  for (const [start, end] of spans) {
    if (start < cursor) continue;
    passage.append(document.createTextNode(hit.text.slice(cursor, start)));
    passage.append(el("mark", {}, hit.text.slice(start, end)));
    cursor = end;
  }
  passage.append(document.createTextNode(hit.text.slice(cursor)));
  return passage;
}

function renderHits(hits) {
  results.replaceChildren();
  hits.forEach((hit, index) => {
    const item = el("li", { class: "hit", id: `hit-${index + 1}`, tabindex: "-1" });
    item.dataset.chunkId = hit.chunk_id;
    const heading = el("h3");
    const url = safeUrl(hit.url);
    const title = hit.title || hit.article_id;
    if (url) {
      heading.append(el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, title));
    } else {
      heading.textContent = title;
    }
    const meta = [hit.source, (hit.published_at || "").slice(0, 10)].filter(Boolean).join(" · ");
    item.append(heading, el("div", { class: "meta" }, meta), passageWithHighlights(hit));
    results.append(item);
  });
}

async function request(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

function looksLikeQuestion(text) {
  return text.trim().endsWith("?");
}

// Enter in the box answers a question and searches anything else; the buttons do what they
// say (Enter fires the Search button too, so the box handles its own Enter).
function enterInBox(event) {
  if (event.key !== "Enter" || event.isComposing) return;
  event.preventDefault();
  if (looksLikeQuestion(queryInput.value)) ask();
  else search();
}

async function search(event, push = true) {
  if (event) event.preventDefault();
  const query = queryInput.value.trim();
  if (!query) return;
  if (push) remember("search");
  const params = filters();
  params.set("query", query);
  params.set("k", "10");
  statusLine.textContent = "Searching…";
  answerPanel.hidden = true;
  try {
    const body = await request(`/search?${params}`);
    renderHits(body.hits);
    statusLine.textContent = body.hits.length
      ? `${plural(body.hits.length, "result")} of ${body.total.toLocaleString("en")} matches ` +
        `in ${Math.round(body.took_ms)} ms`
      : "No results.";
  } catch (error) {
    statusLine.textContent = `Search failed: ${error.message}`;
  }
}

function focusHit(chunkId) {
  const target = [...results.children].find((item) => item.dataset.chunkId === chunkId);
  if (!target) return false;
  target.scrollIntoView({ behavior: "smooth", block: "center" });
  target.focus({ preventScroll: true });
  target.classList.add("flash");
  setTimeout(() => target.classList.remove("flash"), 1500);
  return true;
}

function renderAnswer(body) {
  answerPanel.hidden = false;
  citationList.replaceChildren();
  renderHits(body.passages);
  if (body.answer === null) {
    answerText.textContent = "No confident answer found in the articles. The closest passages are below.";
    return;
  }
  answerText.replaceChildren();
  if (body.answer_span) {
    answerText.append(el("strong", { class: "short-answer" }, body.answer_span.text), document.createTextNode(": "));
  }
  answerText.append(document.createTextNode(body.answer));
  for (const citation of body.citations) {
    const marker = el("a", { href: `#cite-${citation.n}`, class: "cite-marker" }, `[${citation.n}]`);
    answerText.append(marker);
    const item = el("li", { id: `cite-${citation.n}` });
    const url = safeUrl(citation.url);
    const title = citation.title || citation.article_id;
    // Without a url the title is plain text; "Show passage" still leads to the quote.
    const link = url
      ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, title)
      : el("span", { class: "cite-title" }, title);
    const show = el("button", { type: "button", class: "show-passage" }, "Show passage");
    show.style.cssText = "margin-left:.5rem;padding:.1rem .4rem;font-size:.8rem";
    show.addEventListener("click", () => focusHit(citation.chunk_id));
    const date = (citation.published_at || "").slice(0, 10);
    item.append(link, document.createTextNode(date ? ` (${date})` : ""), show,
                el("span", { class: "quote" }, `“${citation.quote}”`));
    citationList.append(item);
  }
}

async function ask(event, push = true) {
  const question = queryInput.value.trim();
  if (!question) {
    queryInput.focus();
    statusLine.textContent = "Type a question first.";
    return;
  }
  if (push) remember("ask");
  const params = filters();
  const body = { question, mode: params.get("mode") };
  for (const key of ["since", "until"]) if (params.get(key)) body[key] = params.get(key);
  if (params.get("source")) body.source = [params.get("source")];
  statusLine.textContent = "Thinking…";
  try {
    const answer = await request("/answer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    renderAnswer(answer);
    statusLine.textContent = answer.answer === null
      ? "No confident answer."
      : `Answer with ${plural(answer.citations.length, "citation")}, ` +
        `confidence ${answer.confidence.toFixed(2)}`;
    document.getElementById("answer-heading").focus?.();
  } catch (error) {
    statusLine.textContent = `Question failed: ${error.message}`;
  }
}

async function loadSources() {
  try {
    const facets = await request("/facets");
    const select = document.getElementById("source");
    const present = new Set([...select.options].map((o) => o.value));
    for (const source of facets.sources) {  // keeps the selection a URL may have made
      if (!present.has(source)) select.append(el("option", { value: source }, source));
    }
  } catch {
    // Filters still work without the list.
  }
}

async function showIndexSize(attempt = 0) {
  try {
    const ready = await request("/ready");
    document.getElementById("index-size").textContent =
      `${plural(ready.articles, "article")} indexed.`;
  } catch {
    if (attempt < 30) setTimeout(() => showIndexSize(attempt + 1), 2000);  // still warming up
  }
}

form.addEventListener("submit", search);
queryInput.addEventListener("keydown", enterInBox);
document.getElementById("ask-button").addEventListener("click", () => ask());
window.addEventListener("popstate", restore);
restore();  // a shared or bookmarked URL opens on its search (before any typing)
loadSources();
showIndexSize();
