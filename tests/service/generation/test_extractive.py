"""The offline answer quotes whole, relevant sentences once each, citing every chunk they came from."""

from __future__ import annotations

from uuid import uuid4

from ragcorp_service.generation.citations import citations_for, cited_numbers
from ragcorp_service.generation.extractive import MAX_ANSWER_CHARS, NO_ANSWER, extractive_answer_pieces
from ragcorp_service.retrieval.results import RetrievedChunk


def _chunks(*texts: str) -> list[RetrievedChunk]:
    return [RetrievedChunk(n, uuid4(), f"doc {n}", text, 1.0, "default", {}) for n, text in enumerate(texts, 1)]


def _answer(question: str, contexts: list[RetrievedChunk]) -> str:
    return "".join(extractive_answer_pieces(question, contexts))


ROTATION = "To rotate the API keys, add the new key next to the old one\nand roll the Deployment."


def test_a_sentence_in_two_overlapping_chunks_is_quoted_once_citing_both() -> None:
    contexts = _chunks(
        "Keys live in a Secret. " + ROTATION, ROTATION + " Rate limits apply per key.", "Backups run nightly at two."
    )
    answer = _answer("How do I rotate the API keys?", contexts)
    assert answer.count("To rotate the API keys") == 1
    assert "To rotate the API keys, add the new key next to the old one and roll the Deployment. [1, 2]" in answer
    assert [c.number for c in citations_for(answer, contexts)] == [1, 2]


def test_sentences_far_weaker_than_the_best_are_left_out() -> None:
    contexts = _chunks(
        "Escalate to the database team when replication lag passes five minutes.",
        "The team's password manager holds every shared secret of the platform.",
    )
    answer = _answer("When should I escalate to the database team?", contexts)
    assert answer == "Escalate to the database team when replication lag passes five minutes. [1]"


def test_the_answer_reads_in_source_order_and_every_marker_is_a_citation() -> None:
    contexts = _chunks(
        "The on-call engineer answers pages within fifteen minutes.",
        "Hand-over of the on-call pager happens every Monday at ten.",
    )
    answer = _answer("When is the on-call pager hand-over and how fast are pages answered?", contexts)
    assert answer.index("answers pages") < answer.index("Hand-over")
    assert cited_numbers(answer) == [c.number for c in citations_for(answer, contexts)] == [1, 2]


def test_the_answer_is_bounded_in_length() -> None:
    long_sentence = "Key rotation " + " ".join(["requires care"] * 200) + "."
    contexts = _chunks(long_sentence, "Key rotation is documented in the handbook for every team member.")
    answer = _answer("How does key rotation work?", contexts)
    quoted = answer.rsplit(" [", 1)[0]
    assert len(answer) <= MAX_ANSWER_CHARS + 20 and quoted.endswith("…")


def test_no_shared_term_means_no_answer() -> None:
    assert _answer("What is the boiling point of lead?", _chunks("Keys rotate every ninety days.")) == NO_ANSWER


def test_the_best_sentence_is_found_among_many_blocks_that_share_a_word() -> None:
    """Only the most promising blocks are segmented; the answer's block is among them wherever it ranks."""
    filler = [
        f"Section {n}. The team reviews the keys of project {n} every month. Dr. Lee signs off on the review."
        for n in range(8)
    ]
    answer = "Keys are rotated by adding the new key beside the old one, e.g. in the API_KEYS secret, then rolling."
    contexts = _chunks(*filler[:6], "Background first.\n\n" + answer, *filler[6:])
    assert _answer("How are keys rotated?", contexts).startswith(answer + " [7]")
