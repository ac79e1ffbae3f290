"""Posting blocks decoded, scored and bounded in numpy: the pure half of block-max keyword search.

A block (migration 0005) holds up to 128 postings of one term in chunk id order.
Its directory entry says which chunk ids it spans and the most any of its
postings can weigh today. `upper_bounds` turns what is known into the most any
chunk in a block's span can score: for each query term, its unread blocks
contribute their bound over their span and its read postings their exact part at
their chunk id; the sum of those step functions, maximised over the block's span,
bounds every chunk there. A block whose bound is below the k-th best score found
so far cannot hold a top-k chunk and is never read (Ding & Suel's block-max idea,
with the bounds of all terms summed per span rather than per term).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

K1 = 1.2
B = 0.75
#: Bounds are raised by this (relative and absolute): a running sum of many steps up and down drifts in
#: its last bits, and sums of the same parts in another order differ there too.
BOUND_SLACK = 1e-6
_STRETCH = 1024  # chunk ids a stretch: `Scores._contenders` selects over their maxima first
_SMALLEST_SCORE = float(np.nextafter(0.0, 1.0))  # a chunk scored at all scores at least this


@dataclass(frozen=True)
class Directory:
    """One query term's blocks, as their primary-key entries list them (allowed collections only)."""

    idf: float
    firsts: np.ndarray  # int64, ascending
    lasts: np.ndarray  # int64
    bounds: np.ndarray  # float64: idf x the most a posting of the block weighs at today's mean length
    postings: np.ndarray  # int64
    generations: np.ndarray  # int64: the merge that wrote each block


@dataclass(frozen=True)
class Postings:
    """Postings of one term, decoded and scored (chunk ids ascending within each block)."""

    chunk_ids: np.ndarray  # int64
    parts: np.ndarray  # float64: idf x bm25_weight


def bm25_parts(idf: float | np.ndarray, tf: np.ndarray, chunk_len: np.ndarray, avgdl: float) -> np.ndarray:
    """idf x `bm25_weight` (migration 0004), the same operations in the same order, so the same bits:
    idf * (tf * (K1 + 1) / (tf + K1 * ((1 - B) + B * chunk_len / avgdl))), computed in place in two
    arrays instead of eight (each a fresh allocation, page faults and all, over a million postings)."""
    tf = np.asarray(tf, np.float64)  # no copy when decode already made it float64
    denominator = np.multiply(chunk_len, B, dtype=np.float64)
    denominator /= avgdl
    denominator += 1 - B
    denominator *= K1
    denominator += tf
    parts = tf * (K1 + 1)
    parts /= denominator
    parts *= idf
    return parts


#: A posting as a block packs it (migration 0005): 13 bytes, big-endian.
POSTING = np.dtype([("offset", ">i4"), ("tf_less_one", "u1"), ("chunk_len", ">i4"), ("code", ">i4")])


@dataclass(frozen=True)
class PackedBlocks:
    """Blocks of one term as read: their first chunk ids, posting counts, and their postings packed
    one block after another."""

    firsts: Sequence[int] | np.ndarray
    counts: Sequence[int] | np.ndarray
    packed: bytes

    @staticmethod
    def join(parts: Sequence[PackedBlocks]) -> PackedBlocks:
        """Blocks read in several runs as one, in the order given."""
        if len(parts) == 1:
            return parts[0]
        return PackedBlocks(
            np.concatenate([np.asarray(p.firsts, np.int64) for p in parts]),
            np.concatenate([np.asarray(p.counts, np.int64) for p in parts]),
            b"".join(p.packed for p in parts),
        )


@dataclass(frozen=True)
class DecodedPostings:
    """Postings of one term as scoring needs them, block after block."""

    chunk_ids: np.ndarray  # int64
    tf: np.ndarray  # float64
    chunk_len: np.ndarray  # float64
    codes: np.ndarray  # collection codes

    @property
    def nbytes(self) -> int:
        return self.chunk_ids.nbytes + self.tf.nbytes + self.chunk_len.nbytes + self.codes.nbytes


def decode(blocks: PackedBlocks) -> DecodedPostings:
    """Every posting of `blocks`, block after block.

    tf and length come as float64, what scoring needs, each converted once from its packed
    (big-endian, 13-byte strided) field: a conversion through int64 on the way cost as much as the
    scoring (exact either way: both are small integers)."""
    postings = np.frombuffer(blocks.packed, POSTING)
    starts = np.repeat(np.asarray(blocks.firsts, np.int64), np.asarray(blocks.counts, np.int64))
    return DecodedPostings(
        starts + postings["offset"],
        postings["tf_less_one"] + 1.0,
        postings["chunk_len"].astype(np.float64),
        postings["code"].astype(np.int32),
    )


class Scores:
    """Each chunk's score over what has been read so far, dense over the query's chunk id span.

    Chunk ids are one sequence, so a query's span is at most the chunks ever stored: an array over
    it adds a posting in O(1) and finds the k-th score in one pass, where grouping ids by sorting
    cost more than reading the postings.
    """

    def __init__(self, first: int, last: int) -> None:
        self.base = first
        self.totals = np.zeros(max(0, last - first + 1))

    def add(self, read: Sequence[Postings]) -> None:
        """Add the parts of postings just read (any number of terms at once).

        Each `Postings` is one term's, so a chunk is in it at most once, and an indexed add is
        exact: one gather and scatter per posting, where a `bincount` over the span allocated and
        added a span-sized array per call (a third of a warm query's time at a million chunks)."""
        for postings in read:
            if postings.chunk_ids.size:
                self.totals[postings.chunk_ids - self.base] += postings.parts

    def kth(self, k: int) -> float:
        """The k-th best score so far, or 0 with fewer than k chunks: a floor under the final k-th."""
        scores = self.totals[self._contenders(k)]
        return float(np.partition(scores, scores.size - k)[scores.size - k]) if scores.size >= k else 0.0

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best (chunk ids, scores): score descending, then chunk id ascending (the full query's order)."""
        found = self._contenders(k)
        scores = self.totals[found]
        if scores.size > k:  # the k best and any tied with the k-th, then their order
            kth = np.partition(scores, scores.size - k)[scores.size - k]
            found, scores = found[scores >= kth], scores[scores >= kth]
        order = np.lexsort((found, -scores))[:k]
        return found[order] + self.base, scores[order]

    def _contenders(self, k: int) -> np.ndarray:
        """Offsets of the scored chunks that could be among the k best: a superset, found in two
        cheap passes over the span.

        The k-th best of the stretches' maxima is a floor under the k-th best score (k stretches
        each hold a score at least that high), so every chunk of the k best is at or above it.
        Listing every scored chunk instead cost 9 ms over a million-chunk span, and selecting over
        the whole span degrades badly while it is mostly zeros (early rounds)."""
        if not self.totals.size:
            return np.empty(0, np.int64)
        maxima = np.maximum.reduceat(self.totals, np.arange(0, self.totals.size, _STRETCH))
        floor = np.partition(maxima, maxima.size - k)[maxima.size - k] if maxima.size >= k else 0.0
        return np.flatnonzero(self.totals >= max(floor, _SMALLEST_SCORE))  # every part is positive

    def upper_bounds(self, directories: Sequence[Directory], unread: Sequence[np.ndarray]) -> list[np.ndarray]:
        """For each term, the most any chunk in each of its `unread` blocks (indices) can score.

        At each chunk id: what its read postings sum to, plus the bound of every unread block
        spanning it (its own term's included). A block's bound is the most that reaches anywhere in
        its span: no chunk there can score more.
        """
        span = self.totals.size
        starts = np.concatenate([d.firsts[i] for d, i in zip(directories, unread, strict=True)]) - self.base
        ends = np.concatenate([d.lasts[i] for d, i in zip(directories, unread, strict=True)]) - self.base + 1
        if starts.size == 0:
            return [np.empty(0) for _ in directories]
        values = np.concatenate([d.bounds[i] for d, i in zip(directories, unread, strict=True)])
        steps = np.bincount(np.concatenate([starts, ends]), np.concatenate([values, -values]), minlength=span + 1)
        level = self.totals + np.cumsum(steps)[:span]
        # the most in each stretch between block edges, then per block over its stretches
        edges = np.unique(np.concatenate([starts, ends]))
        stretch = np.append(np.maximum.reduceat(level, edges[edges < span]), 0.0)
        bounds = []
        for directory, indices in zip(directories, unread, strict=True):
            low = np.searchsorted(edges, directory.firsts[indices] - self.base)
            high = np.searchsorted(edges, directory.lasts[indices] - self.base + 1)
            # a term's blocks never overlap, so low[0] < high[0] <= low[1] < ...: one reduceat for all
            most = np.maximum.reduceat(stretch, np.column_stack([low, high]).ravel())[::2] if indices.size else low
            bounds.append(most * (1 + BOUND_SLACK) + BOUND_SLACK)
        return bounds
