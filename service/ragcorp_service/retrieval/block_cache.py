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

#: What a posting costs in the cache when chunk lengths fit 16 bits and collections 8 (the usual case).
CACHED_POSTING_BYTES = 8


def _smallest(values: np.ndarray, candidates: tuple[type, ...]) -> np.ndarray:
    """`values` (non-negative integers) in the first of `candidates` that holds them all."""
    most = int(values.max()) if values.size else 0
    dtype = next((d for d in candidates if most <= np.iinfo(d).max), candidates[-1])
    return values.astype(dtype)


@dataclass(frozen=True)
class DecodedTerm:
    """A term's postings, decoded, with the directory they were read under, kept compact: scoring
    wants 28 bytes a posting (int64 ids, float64 tf and length), the cache keeps about 8 (ids as
    offsets from the first, tf - 1 in a byte, lengths and collection codes in the smallest integer
    that holds them), so the default cache holds three and a half times the postings. Expanding
    a hit costs a few milliseconds per million postings; reading them from PostgreSQL, tens."""

    firsts: np.ndarray  # int64: the blocks' first chunk ids
    generations: np.ndarray  # int64: the merge that wrote each block
    offsets: np.ndarray  # chunk id - firsts[0]
    tf_less_one: np.ndarray  # uint8
    chunk_len: np.ndarray
    codes: np.ndarray

    @classmethod
    def of(cls, firsts: np.ndarray, generations: np.ndarray, postings: DecodedPostings) -> DecodedTerm:
        base = int(firsts[0]) if firsts.size else 0
        return cls(
            firsts,
            generations,
            _smallest(postings.chunk_ids - base, (np.uint32, np.int64)),
            (postings.tf - 1).astype(np.uint8),  # a tsvector keeps at most 256 positions: tf - 1 fits
            _smallest(postings.chunk_len.astype(np.int64), (np.uint16, np.uint32, np.int64)),
            _smallest(postings.codes, (np.uint8, np.uint16, np.int32)),
        )

    def postings(self) -> DecodedPostings:
        """The postings as scoring wants them (what `blocks.decode` gave), exactly."""
        base = int(self.firsts[0]) if self.firsts.size else 0
        return DecodedPostings(
            self.offsets.astype(np.int64) + base,
            self.tf_less_one + 1.0,
            self.chunk_len.astype(np.float64),
            self.codes,
        )

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in vars(self).values())

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
        for array in vars(decoded).values():
            array.flags.writeable = False
        if (old := self._terms.pop(term, None)) is not None:
            self.used -= old.nbytes
        while self._terms and self.used + decoded.nbytes > self.max_bytes:
            self.used -= self._terms.popitem(last=False)[1].nbytes
        self._terms[term] = decoded
        self.used += decoded.nbytes
