"""Extractive answers: candidates, the learned scorer and reader, the judge, short answers."""
