"""BM25 scores against rank-bm25 (with Lucene's idf), incremental updates, persistence."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from indexer.lexical import BM25Settings, LexicalIndex
from indexer.text_analysis import Analyzer, AnalyzerSettings

WORDS = "apple banana cherry date elder fig grape honeydew kiwi lemon mango nectarine".split()


class LuceneBM25(BM25Okapi):
    """rank-bm25's scoring loop with Lucene's non-negative idf (the variant Lede uses)."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        self.idf = {
            word: math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))
            for word, freq in nd.items()
        }


def _corpus(seed: int, size: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 30))) for _ in range(size)]


def _reference_scores(docs: dict[int, str], analyzer: Analyzer, query: str) -> dict[int, float]:
    ids = sorted(docs)
    reference = LuceneBM25([analyzer(docs[i]) for i in ids], k1=1.2, b=0.75)
    scores = reference.get_scores(analyzer(query))
    return {doc: float(score) for doc, score in zip(ids, scores, strict=True) if score > 0}


def _lede_scores(index: LexicalIndex, query: str) -> dict[int, float]:
    ids, scores = index.search(query, k=10_000)
    return dict(zip(ids.tolist(), scores.astype(float).tolist(), strict=True))


@pytest.mark.parametrize("query", ["apple", "banana cherry", "kiwi kiwi lemon", "fig zzz"])
def test_scores_match_rank_bm25(query: str) -> None:
    analyzer = Analyzer(AnalyzerSettings(stemmer="none", stopwords="none"))
    docs = dict(enumerate(_corpus(1, 200)))
    index = LexicalIndex(analyzer, BM25Settings())
    for doc_id, text in docs.items():
        index.add(doc_id, text)
    expected = _reference_scores(docs, analyzer, query)
    actual = _lede_scores(index, query)
    assert actual.keys() == expected.keys()
    for doc_id, score in expected.items():
        assert actual[doc_id] == pytest.approx(score, rel=1e-5)


def test_incremental_adds_and_deletes_equal_a_fresh_build() -> None:
    analyzer = Analyzer()
    corpus = _corpus(2, 300)
    incremental = LexicalIndex(analyzer)
    for doc_id, text in enumerate(corpus):
        incremental.add(doc_id, text)
    rng = random.Random(3)
    deleted = set(rng.sample(range(300), 120))
    for doc_id in deleted:
        incremental.delete(doc_id)
    for doc_id in range(300, 340):  # adds after deletes
        corpus.append(" ".join(rng.choices(WORDS, k=12)))
        incremental.add(doc_id, corpus[doc_id])
    fresh = LexicalIndex(analyzer)
    for doc_id, text in enumerate(corpus):
        if doc_id not in deleted:
            fresh.add(doc_id, text)
    assert incremental.doc_count == fresh.doc_count
    assert incremental.average_length == pytest.approx(fresh.average_length)
    for query in ["apple mango", "grape", "lemon lemon kiwi fig"]:
        assert _lede_scores(incremental, query) == pytest.approx(_lede_scores(fresh, query))
        remaining = {i: t for i, t in enumerate(corpus) if i not in deleted}
        reference = _reference_scores(remaining, analyzer, query)
        assert _lede_scores(incremental, query) == pytest.approx(reference, rel=1e-5)


def test_allowed_mask_filters_before_top_k() -> None:
    index = LexicalIndex(Analyzer())
    for doc_id in range(100):
        index.add(doc_id, "apple " * (1 + doc_id % 7) + ("banana" if doc_id % 10 == 0 else ""))
    allowed = np.zeros(100, dtype=bool)
    allowed[::10] = True
    ids, _ = index.search("apple", k=5, allowed=allowed)
    assert len(ids) == 5
    assert all(doc_id % 10 == 0 for doc_id in ids.tolist())


def test_persistence_round_trip_keeps_scores_and_updates() -> None:
    analyzer = Analyzer()
    index = LexicalIndex(analyzer)
    for doc_id, text in enumerate(_corpus(4, 120)):
        index.add(doc_id, text)
    for doc_id in range(0, 120, 3):
        index.delete(doc_id)
    loaded = LexicalIndex.from_bytes(index.to_bytes(), analyzer)
    assert loaded.doc_ids == index.doc_ids
    assert _lede_scores(loaded, "apple fig") == pytest.approx(_lede_scores(index, "apple fig"))
    loaded.delete(1)
    index.delete(1)
    loaded.add(500, "apple apple fig")
    index.add(500, "apple apple fig")
    assert _lede_scores(loaded, "apple fig") == pytest.approx(_lede_scores(index, "apple fig"))


def test_analyzer_stems_and_drops_stopwords() -> None:
    assert Analyzer()("The runners were Running to the markets") == [
        "runner",
        "were",
        "run",
        "market",
    ]
    with pytest.raises(ValueError, match="unknown stemmer"):
        AnalyzerSettings(stemmer="klingon")
