"""Citations: which retrieved chunks an answer's `[n]` markers point at.

Both generators number their contexts from 1 and mark claims with `[n]`, so one
parser serves both, and a citation is only ever a chunk the model was shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from ragcorp_service.generation.sentences import flat_text, sentences
from ragcorp_service.retrieval.results import RetrievedChunk

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"\w{3,}")
SNIPPET_CHARS = 300


@dataclass(frozen=True)
class Citation:
    number: int
    document_id: UUID
    chunk_id: int
    title: str
    snippet: str


def cited_numbers(answer: str) -> list[int]:
    """The distinct `[n]` / `[n, m]` numbers in order of first appearance."""
    seen: list[int] = []
    for match in _MARKER.finditer(answer):
        for number in (int(n) for n in match.group(1).split(",")):
            if number not in seen:
                seen.append(number)
    return seen


def citations_for(answer: str, contexts: list[RetrievedChunk]) -> list[Citation]:
    citations = []
    for number in cited_numbers(answer):
        if 1 <= number <= len(contexts):
            chunk = contexts[number - 1]
            citations.append(
                Citation(
                    number=number,
                    document_id=chunk.document_id,
                    chunk_id=chunk.chunk_id,
                    title=chunk.title,
                    snippet=_snippet(answer, chunk.text),
                )
            )
    return citations


def _snippet(answer: str, text: str) -> str:
    """The chunk's sentence the answer says most of (what a reader checks the claim against),
    without Markdown markup; the chunk's flattened start when no sentence shares a word."""
    said = set(_WORD.findall(answer.lower()))
    shared, best = max(((len(said & set(_WORD.findall(s.lower()))), s) for s in sentences(text)), default=(0, ""))
    quoted = best if shared else flat_text(text)
    return quoted if len(quoted) <= SNIPPET_CHARS else quoted[: SNIPPET_CHARS - 1].rsplit(" ", 1)[0] + "…"
