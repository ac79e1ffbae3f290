"""Splitting a chunk's text into the sentences an extractive answer can quote.

Stored text keeps its source's line structure: Markdown and plain text are
often hard-wrapped, and a line break there is a space, not a sentence end. So a
chunk is first cut into blocks where the structure really breaks (blank lines,
headings, list items, table rows), each block's lines are joined, and pySBD's
rule-based segmenter (abbreviations, decimals, initials, quotes) splits the block
into sentences.
"""

from __future__ import annotations

import re
from functools import cache

import pysbd

# A line that starts a block of its own in Markdown (and in text written like it).
_BLOCK_START = re.compile(r"^\s*(?:#{1,6}\s|[-*+>]\s|\d{1,3}[.)]\s|\||```|~~~)")
_MARKUP_PREFIX = re.compile(r"^\s*(?:[-*+>]\s+|\d{1,3}[.)]\s+)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
MIN_SENTENCE_WORDS = 4


@cache
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def blocks(text: str) -> list[str]:
    """Paragraphs and list items with their wrapped lines joined by spaces; headings and fences dropped."""
    found: list[str] = []
    current: list[str] = []
    in_fence = False

    def close() -> None:
        if current:
            found.append(" ".join(current))
            current.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            close()
            in_fence = not in_fence
            continue
        if in_fence or not stripped:
            close()
            continue
        if _BLOCK_START.match(line):
            close()
            if stripped.startswith(("#", "|")):  # headings and table rows are not prose
                continue
        current.append(_MARKUP_PREFIX.sub("", stripped))
    close()
    return found


def block_sentences(block: str) -> list[str]:
    """A block's whole prose sentences, in order; fragments too short to answer anything are skipped."""
    found = []
    # The processor's sentences are `segment()`'s without the character spans it then finds by one
    # regex per sentence (a third of pySBD's time, for offsets nothing here uses).
    for sentence in _segmenter().processor(block).process():
        cleaned = _EMPHASIS.sub("", sentence).strip()
        if len(cleaned.split()) >= MIN_SENTENCE_WORDS:
            found.append(cleaned)
    return found


def flat_text(text: str) -> str:
    """The text as its sentences are quoted: blocks joined, markup and repeated spaces dropped."""
    return " ".join(_EMPHASIS.sub("", " ".join(blocks(text))).split())


def sentences(text: str) -> list[str]:
    return [sentence for block in blocks(text) for sentence in block_sentences(block)]
