"""The view contract's tests (indexer/views/contract.py). Subclass `ViewContract` and provide
`new_view() -> View` (an empty view) as a method; `rows` gives every view both inputs."""

from __future__ import annotations

import numpy as np

from lede.indexer.encoders.hashing_embedder import HashingEmbedder
from lede.indexer.manifest import IndexSettings, Manifest, ModelInfo
from lede.indexer.text_analysis import Analyzer
from lede.indexer.views.contract import (
    ChunkRows,
    Matching,
    Trainable,
    View,
    ViewQuery,
    ViewSpec,
    ranks_all,
)

TEXTS = [
    "the harbour ferry leaves at dawn for the island",
    "a ferry strike closes the harbour for a week",
    "the island festival draws a record crowd",
    "stock markets rise as the central bank holds rates",
    "rates hold steady while markets wait for the bank",
    "a new bridge will replace the old harbour ferry",
    "festival organisers thank the island volunteers",
    "the bank reports record profits this quarter",
]
QUERIES = ["harbour ferry", "central bank rates", "island festival crowd"]
EMBEDDER = HashingEmbedder(dimension=32, max_tokens=64)


def rows(ids: list[int]) -> ChunkRows:
    texts = [TEXTS[i % len(TEXTS)] for i in ids]
    return ChunkRows(np.array(ids, dtype=np.int64), texts, EMBEDDER.embed(texts))


def query(text: str) -> ViewQuery:
    return ViewQuery(text, EMBEDDER.embed([text]))


def mask(ids: list[int], size: int = 64) -> np.ndarray:
    allowed = np.zeros(size, dtype=bool)
    allowed[ids] = True
    return allowed


class ViewContract:
    """What every view must do. Subclasses set `view_type` (or override `new_view`)."""

    view_type: type[View]

    def spec(self) -> ViewSpec:
        info = ModelInfo(EMBEDDER.name, EMBEDDER.dimension, EMBEDDER.revision)
        return ViewSpec(Manifest.new(info, IndexSettings()), Analyzer())

    def new_view(self) -> View:
        return self.view_type.create(self.spec())

    def filled(self, ids: list[int] | None = None) -> View:
        view = self.new_view()
        wanted = list(range(len(TEXTS))) if ids is None else ids
        if isinstance(view, Trainable) and not view.is_trained:
            view.train(rows(wanted).vectors)  # type: ignore[arg-type]
        view.add(rows(wanted))
        return view

    def test_ranks_best_first_with_ties_to_the_lower_id(self) -> None:
        view = self.filled()
        for text in QUERIES:
            found = view.search(query(text), 5, None)
            assert 0 < len(found.ids) <= 5 and len(found.ids) == len(found.scores)
            pairs = list(zip(found.scores, found.ids, strict=True))
            assert pairs == sorted(pairs, key=lambda pair: (-pair[0], pair[1]))
            assert all(isinstance(doc, int) for doc in found.ids)

    def test_a_duplicate_text_ties_and_the_lower_id_comes_first(self) -> None:
        view = self.filled([0, 1, 2, 8])  # 8 holds the same text as 0
        found = view.search(query(TEXTS[0]), 8, None)
        assert found.ids.index(0) + 1 == found.ids.index(8)
        assert found.scores[found.ids.index(0)] == found.scores[found.ids.index(8)]

    def test_ties_at_the_cut_keep_the_lower_ids(self) -> None:
        view = self.filled()
        for text in [*QUERIES, "island ferry"]:
            ranked = view.search(query(text), len(TEXTS), None)
            for k in range(1, len(ranked.ids) + 1):
                cut = view.search(query(text), k, None)
                assert cut.ids == list(ranked.ids[:k]), (text, k)

    def test_the_allowed_mask_applies_before_the_top_k(self) -> None:
        view = self.filled()
        ranked = view.search(query("island ferry"), len(TEXTS), None).ids
        assert len(ranked) >= 3
        allowed = list(ranked[1:3])  # not the best match: the top 1 must come from these
        assert view.search(query("island ferry"), 1, mask(allowed)).ids == [ranked[1]]
        assert view.search(query("the harbour ferry"), 5, mask([])).ids == []

    def test_delete_removes_and_ignores_unknown_ids(self) -> None:
        view = self.filled()
        view.delete(np.array([0, 1, 999], dtype=np.int64))
        assert 0 not in view and 1 not in view and 2 in view
        assert view.live_ids().tolist() == list(range(2, len(TEXTS)))
        found = view.search(query("harbour ferry"), 10, None)
        assert not {0, 1} & set(found.ids)

    def test_adding_an_id_again_changes_nothing(self) -> None:
        view = self.filled()
        before = view.search(query("harbour ferry"), 10, None)
        view.add(rows([0, 1]))
        after = view.search(query("harbour ferry"), 10, None)
        assert (after.ids, after.scores) == (before.ids, before.scores)
        assert view.live_ids().tolist() == list(range(len(TEXTS)))

    def test_bytes_round_trip_answers_the_same(self) -> None:
        view = self.filled()
        view.delete(np.array([3], dtype=np.int64))
        again = type(view).from_bytes(view.to_bytes(), self.spec())
        assert again.live_ids().tolist() == view.live_ids().tolist()
        for text in QUERIES:
            first, second = view.search(query(text), 4, None), again.search(query(text), 4, None)
            assert (first.ids, first.scores) == (second.ids, second.scores)

    def test_matching_covers_what_search_returns(self) -> None:
        view = self.filled()
        for text in QUERIES:
            found = view.search(query(text), len(TEXTS), None)
            matching = view.matching(query(text)) if isinstance(view, Matching) else None
            assert (matching is None) == ranks_all(view)
            if matching is not None:
                assert all(matching[doc] for doc in found.ids)
                assert found.matched == int(np.count_nonzero(matching))

    def test_an_empty_view_finds_nothing(self) -> None:
        view = self.new_view()
        assert view.search(query("harbour"), 5, None).ids == []
        assert view.live_ids().tolist() == []

    def test_it_names_itself_and_reports_stats(self) -> None:
        view = self.filled()
        assert view.name and view.suffix and view.inputs
        assert view.query_input in ("text", "vector")
        assert isinstance(view.stats(), dict) and view.stats()
