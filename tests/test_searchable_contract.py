"""`LedeIndex` passes the searchable-index contract (tests/contracts/searchable.py).

Its reference is another `LedeIndex` of the same articles written in one batch, while this one
is written an article at a time and reopened from its checkpoint and change log: neither the
batching nor a restart may change a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lede.indexer.index import LedeIndex
from lede.indexer.models import Article
from lede.indexer.searchable import SearchableIndex
from tests.contracts.searchable import SearchableContract, embedder


class TestLedeIndex(SearchableContract):
    def build(self, folder: Path, articles: Sequence[Article]) -> SearchableIndex:
        with LedeIndex.create(folder, embedder=embedder()) as index:
            index.add(articles[:10])
            index.checkpoint()
            for article in articles[10:]:
                index.add([article], checkpoint=False)
        return LedeIndex.open(folder, embedder=embedder())

    def write(
        self, index: SearchableIndex, articles: Sequence[Article], deletes: Sequence[str]
    ) -> None:
        assert isinstance(index, LedeIndex)
        index.add(articles)
        index.delete(deletes)
