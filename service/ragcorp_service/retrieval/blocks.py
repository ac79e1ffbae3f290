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


@dataclass(frozen=True)
class Directory:
    """One query term's blocks, as their primary-key entries list them (allowed collections only)."""

    idf: float
    firsts: np.ndarray  # int64, ascending
    lasts: np.ndarray  # int64
    bounds: np.ndarray  # float64: idf x the most a posting of the block weighs at today's mean length
    postings: np.ndarray  # int64


@dataclass(frozen=True)
class Postings:
    """Postings of one term, decoded and scored (chunk ids ascending within each block)."""

    chunk_ids: np.ndarray  # int64
    parts: np.ndarray  # float64: idf x bm25_weight

    @staticmethod
    def empty() -> Postings:
        return Postings(np.empty(0, np.int64), np.empty(0, np.float64))


def bm25_parts(idf: float, tf: np.ndarray, chunk_len: np.ndarray, avgdl: float) -> np.ndarray:
    """idf x `bm25_weight` (migration 0004), the same operations in the same order, so the same bits."""
    tf = tf.astype(np.float64)
    return idf * (tf * (K1 + 1) / (tf + K1 * ((1 - B) + B * chunk_len.astype(np.float64) / avgdl)))


@dataclass(frozen=True)
class PackedBlocks:
    """Blocks as read from the table: first chunk ids, posting counts and the packed columns."""

    firsts: Sequence[int]
    counts: Sequence[int]
    offsets: Sequence[bytes]
    tfs: Sequence[bytes]
    lengths: Sequence[bytes]
    codes: Sequence[bytes]


def decode(blocks: PackedBlocks) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(chunk ids, tf, chunk length, collection code) of every posting, block after block."""
    starts = np.repeat(np.asarray(blocks.firsts, np.int64), np.asarray(blocks.counts, np.int64))
    chunk_ids = starts + np.frombuffer(b"".join(blocks.offsets), ">i4")
    tf = np.frombuffer(b"".join(blocks.tfs), ">i2")
    chunk_len = np.frombuffer(b"".join(blocks.lengths), ">i4")
    codes = np.frombuffer(b"".join(blocks.codes), ">i4")
    return chunk_ids, tf, chunk_len, codes


def upper_bounds(
    directories: Sequence[Directory], unread: Sequence[np.ndarray], read: Sequence[Postings]
) -> list[np.ndarray]:
    """For each term, the most any chunk in each of its `unread` blocks (indices) can score.

    `read` is each term's postings known exactly (blocks read, the tail), already filtered.
    """
    starts, ends, values = [], [], []
    for directory, indices, postings in zip(directories, unread, read, strict=True):
        starts += [directory.firsts[indices], postings.chunk_ids]
        ends += [directory.lasts[indices] + 1, postings.chunk_ids + 1]
        values += [directory.bounds[indices], postings.parts]
    at = np.concatenate(starts + ends)
    if at.size == 0:
        return [np.empty(0) for _ in directories]
    step = np.concatenate(values + [-v for v in values])
    order = np.argsort(at, kind="stable")
    at, level = at[order], np.cumsum(step[order])
    last_of_each = np.flatnonzero(np.diff(at, append=at[-1] + 1))  # the level once every step at a point is in
    points, level = at[last_of_each], np.append(level[last_of_each], 0.0)
    bounds = []
    for directory, indices in zip(directories, unread, strict=True):
        if indices.size == 0:
            bounds.append(np.empty(0))
            continue
        low = np.searchsorted(points, directory.firsts[indices], side="right") - 1
        high = np.searchsorted(points, directory.lasts[indices], side="right")  # one past the last segment
        # a term's blocks never overlap, so low[0] < high[0] <= low[1] < high[1] ...: one reduceat
        spans = np.maximum.reduceat(level, np.column_stack([low, high]).ravel())[::2]
        bounds.append(spans * (1 + BOUND_SLACK) + BOUND_SLACK)
    return bounds


def kth_score(scores: np.ndarray, k: int) -> float:
    """The k-th best of `scores`, or 0 with fewer than k: a floor under the final k-th score."""
    if scores.size < k:
        return 0.0
    return float(np.partition(scores, scores.size - k)[scores.size - k])


def totals(read: Sequence[Postings]) -> tuple[np.ndarray, np.ndarray]:
    """(chunk ids, summed parts): each chunk's score over what has been read, in term order."""
    ids = np.concatenate([p.chunk_ids for p in read]) if read else np.empty(0, np.int64)
    if ids.size == 0:
        return ids, np.empty(0)
    parts = np.concatenate([p.parts for p in read])
    unique, where = np.unique(ids, return_inverse=True)
    return unique, np.bincount(where, weights=parts, minlength=unique.size)


def top(chunk_ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best, score descending, then chunk id ascending (the full query's order)."""
    order = np.lexsort((chunk_ids, -scores))[:k]
    return chunk_ids[order], scores[order]
