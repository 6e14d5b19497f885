"""Relevance evaluation and benchmarks for Lede."""
