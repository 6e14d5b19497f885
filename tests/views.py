"""The engines behind an index's two built-in views, for tests that look inside them."""

from __future__ import annotations

from lede.indexer.index import LedeIndex
from lede.indexer.views.bm25 import BM25View
from lede.indexer.views.dense import DenseView
from lede.indexer.views.dense_search import DenseIndex
from lede.indexer.views.lexical import LexicalIndex


def lexical_of(index: LedeIndex) -> LexicalIndex:
    return index.view("bm25", BM25View).lexical


def dense_of(index: LedeIndex) -> DenseIndex:
    return index.view("dense", DenseView).dense
