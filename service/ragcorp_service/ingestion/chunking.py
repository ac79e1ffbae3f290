"""Splitting text into overlapping chunks that fit the embedder.

Pure functions: the caller supplies the token counter (the embedder's own
tokenizer), so chunk sizes are in the units the model truncates at. Paragraphs
are kept whole when they fit; a paragraph too long for one chunk is split at
sentence ends, and a sentence too long for one chunk at word boundaries.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TokenCounter = Callable[[Sequence[str]], list[int]]

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


@dataclass(frozen=True)
class Chunk:
    text: str
    token_count: int


@dataclass(frozen=True)
class _Unit:
    """A piece that never splits further: a paragraph, a sentence, or a run of words."""

    text: str
    tokens: int
    starts_paragraph: bool


def normalize_text(text: str) -> str:
    """NFC (so "é" typed two ways is one text, one content hash), unified line endings, no NULs
    (PDF extraction emits them), no trailing space."""
    text = unicodedata.normalize("NFC", text)
    lines = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


#: Letters that render as nothing (Hangul fillers, the braille blank): invisible, yet not format characters.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_visible(text: str) -> bool:
    """Whether anything in `text` would show: not only spaces, format characters (zero-width
    spaces and joiners, bidirectional controls), control characters or blank letters."""
    return any(
        not char.isspace()
        and unicodedata.category(char) not in ("Cf", "Cc", "Zs", "Zl", "Zp")
        and char not in _BLANK_LETTERS
        for char in text
    )


def chunk_text(text: str, *, max_tokens: int, overlap_tokens: int, count_tokens: TokenCounter) -> list[Chunk]:
    """Pack paragraphs (or their sentences) into chunks of at most `max_tokens`.

    Consecutive chunks share up to `overlap_tokens` of whole trailing units, so a
    fact split across a boundary is still found whole in one of them.
    """
    if overlap_tokens >= max_tokens:
        raise ValueError("overlap_tokens must be smaller than max_tokens")
    units = _units(text, max_tokens, count_tokens)
    chunks: list[Chunk] = []
    current: list[_Unit] = []
    for unit in units:
        if current and sum(u.tokens for u in current) + unit.tokens > max_tokens:
            chunks.append(_join(current))
            current = _overlap_tail(current, overlap_tokens, max_tokens - unit.tokens)
        current.append(unit)
    if current:
        chunks.append(_join(current))
    return chunks


def _units(text: str, max_tokens: int, count_tokens: TokenCounter) -> list[_Unit]:
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    units: list[_Unit] = []
    for paragraph, tokens in zip(paragraphs, count_tokens(paragraphs), strict=True):
        if tokens <= max_tokens:
            units.append(_Unit(paragraph, tokens, True))
            continue
        sentences = _SENTENCE_END.split(paragraph)
        for index, (sentence, sentence_tokens) in enumerate(zip(sentences, count_tokens(sentences), strict=True)):
            pieces = (
                [(sentence, sentence_tokens)]
                if sentence_tokens <= max_tokens
                else _split_words(sentence, max_tokens, count_tokens)
            )
            for piece_index, (piece, piece_tokens) in enumerate(pieces):
                units.append(_Unit(piece, piece_tokens, index == 0 and piece_index == 0))
    return units


def _split_words(sentence: str, max_tokens: int, count_tokens: TokenCounter) -> list[tuple[str, int]]:
    words = sentence.split()
    pieces: list[tuple[str, int]] = []
    piece: list[str] = []
    piece_tokens = 0
    for word, tokens in zip(words, count_tokens(words), strict=True):
        tokens = min(tokens, max_tokens)  # a single absurd "word" still moves forward
        if piece and piece_tokens + tokens > max_tokens:
            pieces.append((" ".join(piece), piece_tokens))
            piece, piece_tokens = [], 0
        piece.append(word)
        piece_tokens += tokens
    if piece:
        pieces.append((" ".join(piece), piece_tokens))
    return pieces


def _overlap_tail(units: list[_Unit], overlap_tokens: int, room: int) -> list[_Unit]:
    """Trailing units worth at most `overlap_tokens` that leave `room` for the next unit."""
    budget = min(overlap_tokens, room)
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(units[1:]):  # never the whole previous chunk: always make progress
        if total + unit.tokens > budget:
            break
        tail.insert(0, unit)
        total += unit.tokens
    return tail


def _join(units: list[_Unit]) -> Chunk:
    parts = [units[0].text]
    for unit in units[1:]:
        parts.append(("\n\n" if unit.starts_paragraph else " ") + unit.text)
    return Chunk(text="".join(parts), token_count=sum(u.tokens for u in units))
