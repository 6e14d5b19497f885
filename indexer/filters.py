"""Search filters and the in-memory chunk catalog that turns them into id masks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from lede.indexer.arrays import grown
from lede.indexer.models import ChunkRecord


def parse_date(value: str, name: str) -> datetime:
    """An ISO 8601 date or datetime as an aware UTC datetime (naive values are UTC).

    Raises:
        ValueError: naming the parameter and showing the expected form.
    """
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an ISO 8601 date (e.g. 2021-03-01)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrictions applied inside both retrievers before top-k.

    Each list field matches any of its values; fields combine with AND. A range with `since`
    after `until` is empty and matches nothing (as a range query does in Elasticsearch).
    """

    sources: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    article_ids: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:  # naive datetimes are UTC, aware ones are converted to it
                utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
                object.__setattr__(self, name, utc)

    @classmethod
    def from_values(
        cls,
        *,
        sources: Iterable[str] | None = None,
        authors: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        article_ids: Iterable[str] | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        names: tuple[str, str] = ("since", "until"),
    ) -> Filters:
        """Filters from lists (None: any value) and ISO 8601 dates, as the CLI, MCP and HTTP
        take them.

        Raises:
            ValueError: a date that is not ISO 8601, named as the caller calls it (`names`).
        """

        def date(value: str | datetime | None, name: str) -> datetime | None:
            return parse_date(value, name) if isinstance(value, str) else value

        return cls(
            sources=tuple(sources or ()),
            authors=tuple(authors or ()),
            tags=tuple(tags or ()),
            article_ids=tuple(article_ids or ()),
            since=date(since, names[0]),
            until=date(until, names[1]),
        )

    @property
    def empty(self) -> bool:
        return not (
            self.sources
            or self.authors
            or self.tags
            or self.article_ids
            or self.since
            or self.until
        )


@dataclass(slots=True)
class _Codes:
    """Dense integer codes for repeated string values (sources, authors, article ids)."""

    values: dict[str, int] = field(default_factory=dict)

    def code(self, value: str | None) -> int:
        if value is None:
            return -1
        return self.values.setdefault(value, len(self.values))

    def lookup(self, values: Iterable[str]) -> list[int]:
        return [self.values[v] for v in values if v in self.values]


class Catalog:
    """Per-chunk metadata arrays indexed by chunk row id, for fast filter masks."""

    def __init__(self) -> None:
        self.live = np.zeros(0, dtype=bool)
        self._article = np.zeros(0, dtype=np.int64)
        self._source = np.zeros(0, dtype=np.int64)
        self._author = np.zeros(0, dtype=np.int64)
        self._published = np.zeros(0, dtype=np.float64)
        self._articles = _Codes()
        self._sources = _Codes()
        self._authors = _Codes()
        self._tags: dict[str, set[int]] = {}
        self._chunk_tags: dict[int, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return int(self.live.sum())

    def _ensure(self, size: int) -> None:
        self.live = grown(self.live, size, False)
        self._article = grown(self._article, size, -1)
        self._source = grown(self._source, size, -1)
        self._author = grown(self._author, size, -1)
        self._published = grown(self._published, size, np.nan)

    def add(self, records: Sequence[ChunkRecord]) -> None:
        if not records:
            return
        self._ensure(max(r.rowid for r in records) + 1)
        for record in records:
            rowid = record.rowid
            self.live[rowid] = True
            self._article[rowid] = self._articles.code(record.article_id)
            self._source[rowid] = self._sources.code(record.source)
            self._author[rowid] = self._authors.code(record.author)
            self._published[rowid] = np.nan if record.published_ts is None else record.published_ts
            for tag in record.tags:
                self._tags.setdefault(tag, set()).add(rowid)
            self._chunk_tags[rowid] = record.tags

    def article_codes(self, rowids: Sequence[int]) -> np.ndarray:
        """An integer per chunk that is equal for chunks of the same article."""
        ids = np.asarray(rowids, dtype=np.int64)
        codes = np.full(len(ids), -1, dtype=np.int64)
        inside = ids < len(self._article)
        codes[inside] = self._article[ids[inside]]
        return codes

    def published(self, rowids: Sequence[int]) -> np.ndarray:
        """Each chunk's publication time as a POSIX timestamp (NaN when undated)."""
        ids = np.asarray(rowids, dtype=np.int64)
        values = np.full(len(ids), np.nan)
        inside = ids < len(self._published)
        values[inside] = self._published[ids[inside]]
        return values

    def allowed(self, mask: np.ndarray | None) -> np.ndarray:
        """The live chunks a `mask` from `mask()` allows (a mask holds live chunks only), or
        every live chunk without one. Not a copy: callers must not write to it."""
        return self.live if mask is None else mask

    def article_count(self, matching: np.ndarray) -> int:
        """How many distinct articles the `matching` chunks belong to."""
        codes = self._article[fit_mask(matching, len(self._article))]
        return int(np.count_nonzero(np.bincount(codes[codes >= 0]))) if len(codes) else 0

    def facet_counts(self, matching: np.ndarray, limit: int) -> dict[str, list[dict[str, Any]]]:
        """Articles per source and per tag among the `matching` chunks, most first (then by
        value), at most `limit` values each."""
        inside = fit_mask(matching, len(self._article))
        articles = self._article[inside]
        sources = self._source[inside]
        pairs = np.unique(np.stack([articles, sources]), axis=1) if len(articles) else None
        names = {code: value for value, code in self._sources.values.items()}
        source_counts: dict[str, int] = {}
        if pairs is not None:
            codes, counts = np.unique(pairs[1][pairs[1] >= 0], return_counts=True)
            source_counts = {names[int(c)]: int(n) for c, n in zip(codes, counts, strict=True)}
        tag_counts: dict[str, int] = {}
        for tag, rowids in self._tags.items():
            hit = [r for r in rowids if r < len(inside) and inside[r]]
            if hit:
                tag_counts[tag] = len(set(self._article[hit].tolist()))

        def top(counts: dict[str, int]) -> list[dict[str, Any]]:
            ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
            return [{"value": value, "count": count} for value, count in ordered]

        return {"source": top(source_counts), "tag": top(tag_counts)}

    def delete(self, rowids: Iterable[int]) -> None:
        for rowid in rowids:
            if rowid < len(self.live) and self.live[rowid]:
                self.live[rowid] = False
                for tag in self._chunk_tags.pop(rowid, ()):
                    self._tags[tag].discard(rowid)

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Boolean mask of allowed row ids, or None when nothing is filtered."""
        if filters is None or filters.empty:
            return None
        mask = self.live.copy()
        for codes, column, values in (
            (self._sources, self._source, filters.sources),
            (self._authors, self._author, filters.authors),
            (self._articles, self._article, filters.article_ids),
        ):
            if values:
                mask &= np.isin(column, codes.lookup(values))
        if filters.tags:
            tagged = np.zeros(len(mask), dtype=bool)
            for tag in filters.tags:
                rowids = self._tags.get(tag)
                if rowids:
                    tagged[list(rowids)] = True
            mask &= tagged
        if filters.since is not None:
            with np.errstate(invalid="ignore"):
                mask &= self._published >= filters.since.timestamp()
        if filters.until is not None:
            with np.errstate(invalid="ignore"):
                mask &= self._published <= filters.until.timestamp()
        return mask


def fit_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A boolean mask cut or padded (with False) to `size` ids."""
    if len(mask) >= size:
        return mask[:size]
    fitted = np.zeros(size, dtype=bool)
    fitted[: len(mask)] = mask
    return fitted
