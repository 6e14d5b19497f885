"""`shards.json`: how a sharded index directory maps articles to its shards.

An article's id hashes (BLAKE2b, stable across processes and machines) to one of many
virtual buckets, and the layout maps each bucket to a shard. Moving buckets between shards
re-shards an index by moving stored rows and their embeddings, never by embedding again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lede.indexer.errors import IndexFormatError
from lede.indexer.files import atomic_write

LAYOUT_NAME = "shards.json"
LAYOUT_FORMAT = "lede-sharded-index"
LAYOUT_VERSION = 1
BUCKETS = 4096
MAX_SHARDS = 256


def bucket_of(article_id: str, buckets: int = BUCKETS) -> int:
    """The virtual bucket an article id hashes to."""
    digest = hashlib.blake2b(article_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


@dataclass(frozen=True, slots=True)
class ShardLayout:
    """The shard count, each bucket's shard (`bucket_shards[bucket]`), and the FAISS factory
    of the quantizer every shard's dense view starts from (None: each trains its own, i.e. the
    corpus is in the Flat tier; `ShardedIndex._choose_tier`)."""

    shards: int
    bucket_shards: tuple[int, ...]
    dense_template: str | None = None

    @classmethod
    def even(cls, shards: int, buckets: int = BUCKETS) -> ShardLayout:
        """Buckets dealt to the shards in turn."""
        if not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"--shards must be within [1, {MAX_SHARDS}], got {shards}")
        return cls(shards, tuple(bucket % shards for bucket in range(buckets)))

    def shard_of(self, article_id: str) -> int:
        return self.bucket_shards[bucket_of(article_id, len(self.bucket_shards))]

    @staticmethod
    def shard_name(shard: int) -> str:
        return f"shard-{shard:03d}"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LAYOUT_FORMAT,
            "version": LAYOUT_VERSION,
            "shards": self.shards,
            "hash": "blake2b-64",
            "bucket_shards": list(self.bucket_shards),
            "dense_template": self.dense_template,
        }


def is_sharded(directory: Path) -> bool:
    return (directory / LAYOUT_NAME).exists()


def write_layout(directory: Path, layout: ShardLayout) -> None:
    atomic_write(directory / LAYOUT_NAME, json.dumps(layout.to_json()).encode() + b"\n")


def read_layout(directory: Path) -> ShardLayout:
    """Load and check `shards.json`.

    Raises:
        IndexFormatError: an unknown format or version, or a damaged file.
    """
    path = directory / LAYOUT_NAME
    try:
        data = json.loads(path.read_text())
        if data.get("format") != LAYOUT_FORMAT or data.get("version") != LAYOUT_VERSION:
            raise IndexFormatError(
                f"{path}: format {data.get('format')!r} version {data.get('version')!r} is not "
                f"supported (this Lede reads {LAYOUT_FORMAT!r} version {LAYOUT_VERSION})"
            )
        shards = int(data["shards"])
        buckets = tuple(int(shard) for shard in data["bucket_shards"])
        if not buckets or any(not 0 <= shard < shards for shard in buckets):
            raise ValueError("a bucket maps to no shard")
        template = data.get("dense_template")
        if template is not None and not isinstance(template, str):
            raise ValueError("dense_template is not a FAISS factory string")
    except IndexFormatError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise IndexFormatError(f"{path} is damaged or incomplete: {error!r}") from None
    return ShardLayout(shards, buckets, template)
