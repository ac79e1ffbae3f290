"""The offline answer quotes whole, relevant sentences once each, citing every chunk they came from."""

from __future__ import annotations

import asyncio
from functools import cache
from uuid import uuid4

from ragcorp_service.generation.citations import citations_for, cited_numbers
from ragcorp_service.generation.extractive import MAX_ANSWER_CHARS, NO_ANSWER, WEAK_MATCH, ExtractiveGenerator
from ragcorp_service.local_models import DEFAULT, default_onnx_dir
from ragcorp_service.providers.embedders import local_embedder
from ragcorp_service.retrieval.results import RetrievedChunk


@cache
def _generator() -> ExtractiveGenerator:
    """The offline answerer as the service builds it: with the bundled embedder judging its quotes."""
    return ExtractiveGenerator(local_embedder(DEFAULT.name, default_onnx_dir()))


def _chunks(*texts: str) -> list[RetrievedChunk]:
    return [RetrievedChunk(n, uuid4(), f"doc {n}", text, 1.0, "default", {}) for n, text in enumerate(texts, 1)]


def _answer(question: str, contexts: list[RetrievedChunk]) -> str:
    return "".join(asyncio.run(_generator().answer_pieces(question, contexts)))


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
    regions = ", ".join(f"region {n}" for n in range(150))
    long_sentence = (
        f"To rotate the API keys, add the new key next to the old one, then roll the Deployment in {regions}."
    )
    contexts = _chunks(long_sentence, "Backups run nightly at two.")
    answer = _answer("How do I rotate the API keys?", contexts)
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


ON_CALL = _chunks(
    "On-call handbook\n\nThe on-call engineer answers pages within fifteen minutes, day and night,\n"
    "for one week at a time. Hand-over happens every Monday at 10:00.",
    "Never paste keys into chat; send them through the team's password manager instead.",
)


def test_an_answer_sharing_few_words_with_the_question_is_still_found() -> None:
    """Only "call" is shared, and the page's heading used to outrank its paragraph: nothing was said."""
    answer = _answer("How quickly do I need to respond when on call?", ON_CALL)
    assert answer.startswith("The on-call engineer answers pages within fifteen minutes") and answer.endswith("[1]")


def test_a_sentence_that_only_mentions_the_subject_is_not_an_answer() -> None:
    """The password-manager sentence shares "password" with the question and answers nothing."""
    assert _answer("What is the office wifi password?", ON_CALL) == NO_ANSWER


def test_a_weak_match_is_quoted_as_the_closest_passage_and_says_so() -> None:
    # Cosine about 0.40, mid-way between the thresholds: "What is the parental leave policy?" sat at
    # 0.4567 on an AMX machine with the same packages and export, where it had passed under 0.45
    # (int8 kernels differ by CPU), and a test of the band must not hang on its third decimal.
    contexts = _chunks("Annual leave is twenty-five days a year, and unused days carry over until March.")
    answer = _answer("Is there paid parental leave?", contexts)
    assert answer.startswith(WEAK_MATCH) and "Annual leave is twenty-five days" in answer
    assert [c.number for c in citations_for(answer, contexts)] == [1]
