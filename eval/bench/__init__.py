"""Benchmarks: speed and memory of the hot paths, each printing and writing JSON."""
