"""Lede's read path: the search engine, answers and the HTTP service."""

from lede.service.engine import EngineSettings, Hit, SearchEngine, SearchResult

__all__ = ["EngineSettings", "Hit", "SearchEngine", "SearchResult"]
