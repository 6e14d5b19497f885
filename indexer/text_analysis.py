"""Turning text into BM25 terms: lowercase, unicode word split, stopwords, Snowball stems."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import Stemmer

_WORD = re.compile(r"\w+", re.UNICODE)

# Lucene's classic English stopword set (EnglishAnalyzer), the usual choice for BM25 baselines.
ENGLISH_STOPWORDS = frozenset(
    (
        "a an and are as at be but by for if in into is it no not of on or such that the their "
        "then there these they this to was will with"
    ).split()
)


@dataclass(frozen=True, slots=True)
class AnalyzerSettings:
    """How text becomes terms. `stemmer` is a Snowball language name or "none"."""

    stemmer: str = "english"
    stopwords: str = "english"

    def __post_init__(self) -> None:
        if self.stemmer != "none" and self.stemmer not in Stemmer.algorithms():
            raise ValueError(
                f"unknown stemmer {self.stemmer!r}; use 'none' or one of {Stemmer.algorithms()}"
            )
        if self.stopwords not in {"english", "none"}:
            raise ValueError(f"stopwords must be 'english' or 'none', got {self.stopwords!r}")


class Analyzer:
    """Callable that maps a text to its list of terms (with repetitions, in order)."""

    def __init__(self, settings: AnalyzerSettings | None = None):
        self.settings = settings or AnalyzerSettings()

    @cached_property
    def _stemmer(self) -> Stemmer.Stemmer | None:
        if self.settings.stemmer == "none":
            return None
        return Stemmer.Stemmer(self.settings.stemmer)

    @cached_property
    def _stopwords(self) -> frozenset[str]:
        return ENGLISH_STOPWORDS if self.settings.stopwords == "english" else frozenset()

    def __call__(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in self._stopwords]
        if self._stemmer is None:
            return words
        return list(self._stemmer.stemWords(words))
