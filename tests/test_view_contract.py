"""Every registered view passes the view contract (tests/contracts/views.py)."""

from __future__ import annotations

from lede.indexer.bm25_view import BM25View
from lede.indexer.dense_view import DenseView
from lede.indexer.views import view_types
from tests.contracts.views import ViewContract


class TestBM25View(ViewContract):
    view_type = BM25View


class TestDenseView(ViewContract):
    view_type = DenseView


def test_every_registered_view_has_a_contract_test() -> None:
    tested = {cls.view_type for cls in ViewContract.__subclasses__()}
    assert set(view_types().values()) <= tested
