"""Retriever views: the view contract, BM25 and dense (FAISS), each derived from the chunks."""
