"""Ranking stored chunks for a query: vector, BM25 keyword, and their fusion."""
