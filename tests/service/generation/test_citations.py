"""A citation's snippet is what a reader checks the claim against: the quoted sentence, as text."""

from __future__ import annotations

from uuid import uuid4

from ragcorp_service.generation.citations import citations_for
from ragcorp_service.retrieval.results import RetrievedChunk


def chunk(text: str) -> RetrievedChunk:
    return RetrievedChunk(1, uuid4(), "Runbook", text, 1.0, "default", {})


def test_the_snippet_is_the_quoted_sentence_without_markdown() -> None:
    text = (
        "# On call\n\n- **Acknowledge** every page within 15 minutes.\n"
        "- Escalate to the `database` team when replication lag passes five minutes.\n"
    )
    answer = "Escalate to the database team when replication lag passes five minutes [1]."
    [citation] = citations_for(answer, [chunk(text)])
    assert citation.snippet == "Escalate to the database team when replication lag passes five minutes."


def test_without_a_shared_word_the_snippet_is_the_chunk_start_as_text() -> None:
    [citation] = citations_for("Nothing in common [1].", [chunk("## Title\n\n**Bold** words *here* and more.")])
    assert "**" not in citation.snippet and "##" not in citation.snippet
