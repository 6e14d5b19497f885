"""Errors raised by the indexer; the service maps them to HTTP statuses in one place."""

from __future__ import annotations


class LedeError(Exception):
    """Base class for every error Lede raises on purpose."""


class InvalidArticleError(LedeError):
    """An article failed validation (missing id or text, bad date, wrong type)."""


class SourceError(LedeError):
    """A source path cannot be read at all (missing file, unsupported type)."""


class IndexFormatError(LedeError):
    """The index directory is not a Lede index, or was built with other settings."""


class IndexLockedError(LedeError):
    """Another process holds the index's write lock."""


class ArticleNotFoundError(LedeError):
    """No article with the requested id exists in the index."""


class StorageError(LedeError):
    """A write failed in storage (disk full, quota, file-size limit, I/O error); everything
    committed before it stays intact."""


class ShardUnavailableError(LedeError):
    """A shard of a sharded index did not answer (its actor is down or restarting)."""

    def __init__(self, shards: list[int], reason: str, *, restarting: bool = True):
        self.shards = list(shards)
        self.reason = reason
        self.restarting = restarting
        names = ", ".join(f"shard-{shard:03d}" for shard in self.shards) or "a shard"
        then = (
            "retry shortly: it restarts and reopens with every acknowledged write"
            if restarting
            else "it will not restart; restart the service"
        )
        super().__init__(f"{names} is unavailable ({reason}); {then}")
