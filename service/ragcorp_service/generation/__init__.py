"""Answering a question from retrieved chunks, with citations."""
