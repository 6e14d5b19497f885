"""Opening an index directory of either shape: one index, or a sharded one (`shards.json`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lede.indexer.index import LedeIndex
from lede.indexer.manifest import IndexSettings, Manifest, read_manifest
from lede.indexer.shards.layout import is_sharded, read_layout
from lede.indexer.shards.sharded import ShardedIndex

Index = LedeIndex | ShardedIndex


def open_index(path: Path, **options: Any) -> Index:
    """Open the index at `path`, sharded or not (`LedeIndex.open`'s options)."""
    if is_sharded(Path(path)):
        return ShardedIndex.open(path, **options)
    return LedeIndex.open(path, **options)


def create_index(
    path: Path, *, shards: int | None = None, settings: IndexSettings | None = None, **options: Any
) -> Index:
    """Create (or open, to add to) an index: sharded when `shards` is given or the directory
    already is."""
    path = Path(path)
    if shards is None and is_sharded(path):
        shards = read_layout(path).shards
    if shards is not None:
        return ShardedIndex.create(path, shards, settings=settings, **options)
    return LedeIndex.create(path, settings=settings, **options)


def repair_index(path: Path) -> dict[str, int]:
    """Rebuild the views of every shard from SQLite (`lede repair`)."""
    if is_sharded(Path(path)):
        return ShardedIndex.repair_directory(path)
    return LedeIndex.repair_directory(path)


def index_manifest(path: Path) -> Manifest:
    """The manifest of the index at `path` (of its first shard when sharded); checks that
    the directory is an index without opening it."""
    path = Path(path)
    if is_sharded(path):
        return read_manifest(path / read_layout(path).shard_name(0))
    return read_manifest(path)
