"""Embedding models: sentence-transformers, its ONNX run, the hashing embedder, the tokenizer."""
