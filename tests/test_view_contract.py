"""Every registered view passes the view contract (tests/contracts/views.py)."""

from __future__ import annotations

from lede.indexer.views.bm25 import BM25View
from lede.indexer.views.contract import Matching, Resizable, Trainable, ranks_all, view_types
from lede.indexer.views.dense import DenseView
from tests.contracts.views import ViewContract


class TestBM25View(ViewContract):
    view_type = BM25View


class TestDenseView(ViewContract):
    view_type = DenseView


def test_every_registered_view_has_a_contract_test() -> None:
    tested = {cls.view_type for cls in ViewContract.__subclasses__()}
    assert set(view_types().values()) <= tested


def test_views_say_what_they_can_do_by_their_capabilities() -> None:
    """A view implements the small core and only the capabilities it has: no no-op members."""
    bm25 = BM25View.create(ViewContract().spec())
    assert isinstance(bm25, Matching) and not ranks_all(bm25)
    assert not isinstance(bm25, Trainable) and not isinstance(bm25, Resizable)
    for member in ("is_trained", "training_size", "train", "resize_due", "rebuild_due"):
        assert not hasattr(BM25View, member)
    dense = DenseView.create(ViewContract().spec())
    assert isinstance(dense, Trainable) and isinstance(dense, Resizable)
    assert not isinstance(dense, Matching) and ranks_all(dense)
    for member in ("matching", "statistics", "cost"):
        assert not hasattr(DenseView, member)
