"""The offline answerer: quote the retrieved sentences that best match the question.

It cannot paraphrase or reason, but every word it says is in a cited source,
which makes it a safe default when no Gemini key is configured.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache

import snowballstemmer

from ragcorp_service.retrieval.results import RetrievedChunk

NO_ANSWER = "I found nothing in the indexed documents that answers this question."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")
_MARKUP_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|[-*+>]\s+|\d+[.)]\s+)")
MIN_SENTENCE_WORDS = 4
_WORD = re.compile(r"[A-Za-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)


@cache
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


def content_terms(text: str) -> set[str]:
    words = [w.lower() for w in _WORD.findall(text)]
    return set(_stemmer().stemWords([w for w in words if w not in _STOPWORDS]))


@dataclass(frozen=True)
class ScoredSentence:
    score: float
    context_number: int
    position: int
    text: str


def _sentences(text: str) -> list[str]:
    """Prose sentences; headings and fragments too short to answer anything are skipped."""
    sentences = (_MARKUP_PREFIX.sub("", s).strip() for s in _SENTENCE_END.split(text))
    return [s for s in sentences if len(s.split()) >= MIN_SENTENCE_WORDS and not s.startswith("#")]


def best_sentences(question: str, contexts: list[RetrievedChunk], limit: int = 3) -> list[ScoredSentence]:
    """Sentences sharing the most (rarest) question terms, best-ranked contexts first on ties."""
    query = content_terms(question)
    if not query:
        return []
    candidates = [
        (number, position, sentence, content_terms(sentence))
        for number, chunk in enumerate(contexts, 1)
        for position, sentence in enumerate(_sentences(chunk.text))
    ]
    # Terms found in fewer sentences say more about the question (an idf over the candidates).
    frequency = {term: sum(term in terms for *_, terms in candidates) for term in query}
    scored = []
    for number, position, sentence, terms in candidates:
        matched = query & terms
        if not matched:
            continue
        weight = sum(math.log(1 + len(candidates) / frequency[t]) for t in matched)
        score = weight / math.sqrt(1 + len(terms)) + 0.01 / number
        scored.append(ScoredSentence(score, number, position, sentence))
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored[:limit]


def extractive_answer_pieces(question: str, contexts: list[RetrievedChunk]) -> list[str]:
    best = best_sentences(question, contexts)
    if not best:
        return [NO_ANSWER]
    # Quote in reading order of the sources so the answer reads as a passage.
    best.sort(key=lambda s: (s.context_number, s.position))
    return [("" if i == 0 else " ") + f"{s.text} [{s.context_number}]" for i, s in enumerate(best)]


class ExtractiveGenerator:
    name = "extractive"

    async def stream(self, question: str, contexts: list[RetrievedChunk]) -> AsyncIterator[str]:
        for piece in extractive_answer_pieces(question, contexts):
            yield piece

    async def check(self) -> None:
        return None
