"""Chunks fit the embedder, lose no words, overlap, and keep paragraphs whole."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragcorp_service.ingestion.chunking import chunk_text, normalize_text
from ragcorp_service.providers.embedders import approximate_token_count

WORDS = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
SENTENCES = st.lists(WORDS, min_size=1, max_size=40).map(lambda ws: " ".join(ws) + ".")
PARAGRAPHS = st.lists(SENTENCES, min_size=1, max_size=6).map(" ".join)
DOCUMENTS = st.lists(PARAGRAPHS, min_size=1, max_size=8).map("\n\n".join)


def chunks_of(text: str, max_tokens: int = 30, overlap: int = 8) -> list[str]:
    return [
        c.text
        for c in chunk_text(text, max_tokens=max_tokens, overlap_tokens=overlap, count_tokens=approximate_token_count)
    ]


@settings(max_examples=150, deadline=None)
@given(DOCUMENTS, st.integers(min_value=8, max_value=80))
def test_every_chunk_fits_the_token_budget(text: str, max_tokens: int) -> None:
    for chunk in chunk_text(
        text, max_tokens=max_tokens, overlap_tokens=max_tokens // 4, count_tokens=approximate_token_count
    ):
        assert chunk.token_count <= max_tokens
        assert approximate_token_count([chunk.text])[0] <= max_tokens


@settings(max_examples=150, deadline=None)
@given(DOCUMENTS)
def test_no_word_is_lost_and_order_is_kept(text: str) -> None:
    chunks = chunks_of(text)
    words = text.split()
    # Each chunk is a contiguous run of the document starting at or before where the
    # previous one ended (overlap may repeat words) and reaching past it (no gaps, progress).
    position = 0
    for chunk in chunks:
        run = chunk.split()
        starts = [s for s in range(position + 1) if words[s : s + len(run)] == run]
        assert starts, f"chunk {chunk!r} is not a contiguous run continuing the document"
        assert max(starts) + len(run) > position
        position = max(starts) + len(run)
    assert position == len(words)


def test_consecutive_chunks_share_an_overlap() -> None:
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(30)]
    chunks = chunks_of(" ".join(sentences), max_tokens=40, overlap=10)
    assert len(chunks) > 2
    for previous, following in itertools.pairwise(chunks):
        last_sentence = previous.rsplit(". ", 1)[-1]
        assert following.startswith(last_sentence.rstrip("."))


def test_paragraphs_that_fit_stay_whole() -> None:
    paragraphs = ["Alpha beta gamma delta.", "Epsilon zeta eta theta.", "Iota kappa lambda mu."]
    chunks = chunks_of("\n\n".join(paragraphs), max_tokens=12, overlap=0)
    assert chunks == ["\n\n".join(paragraphs[:2]), paragraphs[2]]


def test_a_single_overlong_word_run_still_makes_progress() -> None:
    chunks = chunks_of("x" * 5000 + " " + "word " * 100, max_tokens=20, overlap=5)
    assert "".join(chunks).count("x") == 5000
    assert sum(chunk.count("word") for chunk in chunks) >= 100


def test_overlap_must_be_smaller_than_chunk() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("text", max_tokens=10, overlap_tokens=10, count_tokens=approximate_token_count)


def test_normalisation_makes_line_endings_irrelevant() -> None:
    assert normalize_text("a  \r\nb\r\n\r\n") == normalize_text("a\nb")
