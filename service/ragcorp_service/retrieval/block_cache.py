"""Decoded posting lists kept in memory between keyword queries, keyed by what makes them immutable.

A block never changes once written: a merge that rewrites it gives it a new
generation (migration 0005). So a term's blocks, decoded, stay right for as long
as the term's directory lists the same blocks at the same generations, and a
query whose plan lists exactly those reuses them instead of reading and decoding
them again: the common words of a language sit in most queries, and reading
their postings was most of a query's time. Anything that changes between
queries is applied when scoring, not stored: tombstones, filters, idf and the
mean chunk length.

Least recently used terms go first once `max_bytes` is reached; only unfiltered
directories are kept (a collection filter lists a subset of the blocks).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ragcorp_service.retrieval.blocks import DecodedPostings, Directory


@dataclass(frozen=True)
class DecodedTerm:
    """A term's postings, decoded, with the directory they were read under."""

    firsts: np.ndarray  # int64: the blocks' first chunk ids
    generations: np.ndarray  # int64: the merge that wrote each block
    postings: DecodedPostings

    @property
    def nbytes(self) -> int:
        return self.firsts.nbytes + self.generations.nbytes + self.postings.nbytes

    def matches(self, directory: Directory) -> bool:
        return np.array_equal(self.firsts, directory.firsts) and np.array_equal(self.generations, directory.generations)


class BlockCache:
    """Terms' decoded postings, least recently used evicted first, at most `max_bytes` in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._terms: OrderedDict[str, DecodedTerm] = OrderedDict()

    def get(self, term: str, directory: Directory) -> DecodedTerm | None:
        """The term's postings if they were decoded under this very directory."""
        found = self._terms.get(term)
        if found is None or not found.matches(directory):
            return None
        self._terms.move_to_end(term)
        return found

    def put(self, term: str, decoded: DecodedTerm) -> None:
        """Keep `decoded` (its arrays made read-only: every query that hits shares them)."""
        if decoded.nbytes > self.max_bytes:
            return
        for array in (decoded.firsts, decoded.generations, *vars(decoded.postings).values()):
            array.flags.writeable = False
        if (old := self._terms.pop(term, None)) is not None:
            self.used -= old.nbytes
        while self._terms and self.used + decoded.nbytes > self.max_bytes:
            self.used -= self._terms.popitem(last=False)[1].nbytes
        self._terms[term] = decoded
        self.used += decoded.nbytes
