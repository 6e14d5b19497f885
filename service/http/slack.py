"""Slack slash command: verify Slack's signature, answer, reply with Block Kit."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

from lede.service.answers.answerer import Answer
from lede.service.engine import Hit

USAGE = (
    "Ask me a question about the indexed articles, for example "
    "`/lede Who plays Ethan Hunt in Mission: Impossible 7?`"
)


def verify(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """Slack's v0 HMAC-SHA256 over `v0:{timestamp}:{body}`, constant-time, at most 5 minutes old."""
    return SignatureVerifier(secret).is_valid(body, timestamp, signature)


def command_text(body: bytes) -> str:
    """The `text` field of a form-encoded slash command (empty when absent)."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return (fields.get("text") or [""])[0].strip()


def _escape(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(hit: Hit) -> str:
    record = hit.record
    title = _escape(record.title or record.article_id).replace("|", "¦")
    label = f"<{record.url}|{title}>" if record.url else f"*{title}*"
    details = " · ".join(x for x in (record.source, (record.published_at or "")[:10]) if x)
    return f"{label} · {_escape(details)}" if details else label


HELP_WORDS = {"help", "-h", "--help", "?", "usage"}


def wants_help(text: str) -> bool:
    return not text or text.lower() in HELP_WORDS


def usage_message(note: str = "") -> dict[str, Any]:
    """Only the person who typed the command sees it (`ephemeral`)."""
    text = f"{note}\n{USAGE}" if note else USAGE
    return {
        "response_type": "ephemeral",
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def answer_message(question: str, answer: Answer) -> dict[str, Any]:
    """Block Kit: the answer with numbered citations for the channel, or "no answer found"
    and the closest passages for the asker alone (`ephemeral`)."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Q:* {_escape(question)}"}}
    ]
    if answer.answer is None:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "No answer found in the articles."},
            }
        )
        if answer.passages:
            lines = [f"{n}. {_link(hit)}" for n, hit in enumerate(answer.passages[:3], start=1)]
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "*Closest passages*\n" + "\n".join(lines)},
                }
            )
        fallback = "No answer found in the articles."
    else:
        markers = "".join(f"[{c.n}]" for c in answer.citations)
        lead = f"*{_escape(answer.answer_span.text)}*: " if answer.answer_span else ""
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{lead}{_escape(answer.answer)} {markers}"},
            }
        )
        sources = [f"[{c.n}] {_link(c.hit)}" for c in answer.citations]
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(sources)}]}
        )
        fallback = f"{answer.answer} {markers}"
    visibility = "ephemeral" if answer.answer is None else "in_channel"
    return {"response_type": visibility, "text": fallback, "blocks": blocks}
