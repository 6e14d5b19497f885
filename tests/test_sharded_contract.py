"""`ShardedIndex` passes the searchable-index contract (tests/contracts/searchable.py): three
shards answer as one index of the same articles, to the last bit, before and after writes,
and after reopening from the shards' checkpoints and change logs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lede.indexer.index import LedeIndex
from lede.indexer.models import Article
from lede.indexer.searchable import SearchableIndex
from lede.indexer.shards.sharded import ShardedIndex
from tests.contracts.searchable import SearchableContract, embedder


class TestShardedIndex(SearchableContract):
    def build(self, folder: Path, articles: Sequence[Article]) -> SearchableIndex:
        with ShardedIndex.create(folder, 3, embedder=embedder()) as index:
            index.add(articles[:10])
            index.checkpoint()
            index.add(articles[10:], batch_size=7, checkpoint=False)
        return ShardedIndex.open(folder, embedder=embedder())

    def write(
        self, index: SearchableIndex, articles: Sequence[Article], deletes: Sequence[str]
    ) -> None:
        assert isinstance(index, ShardedIndex | LedeIndex)  # the reference is written alike
        index.add(articles)
        index.delete(deletes)
