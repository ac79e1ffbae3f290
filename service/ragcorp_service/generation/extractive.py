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

from ragcorp_service.generation.sentences import block_sentences, blocks
from ragcorp_service.retrieval.results import RetrievedChunk

NO_ANSWER = "I found nothing in the indexed documents that answers this question."
#: An answer quotes at most this many characters of sources (a sentence alone past it is cut).
MAX_ANSWER_CHARS = 700
#: Sentences scoring under this fraction of the best one are left out.
RELATIVE_SCORE = 0.5
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
    #: Every context the sentence appears in (overlapping chunks repeat sentences), best-ranked first.
    context_numbers: tuple[int, ...]
    position: int
    text: str


@dataclass
class _Candidate:
    text: str
    terms: set[str]
    context_numbers: list[int]
    position: int


def _candidates(query: set[str], contexts: list[RetrievedChunk]) -> list[_Candidate]:
    """Distinct sentences of the blocks that share a term with the question, each once with all its contexts.

    Blocks without a question term are not segmented at all: they cannot be quoted, and the
    segmenter is the dearest step here.
    """
    found: dict[str, _Candidate] = {}
    for number, chunk in enumerate(contexts, 1):
        for block in blocks(chunk.text):
            if not query & content_terms(block):
                continue
            for sentence in block_sentences(block):
                key = " ".join(sentence.lower().split())
                if key in found:
                    if number not in found[key].context_numbers:
                        found[key].context_numbers.append(number)
                    continue
                found[key] = _Candidate(sentence, content_terms(sentence), [number], len(found))
    return list(found.values())


def best_sentences(question: str, contexts: list[RetrievedChunk], limit: int = 3) -> list[ScoredSentence]:
    """Sentences sharing the most (rarest) question terms, best-ranked contexts first on ties."""
    query = content_terms(question)
    if not query:
        return []
    candidates = _candidates(query, contexts)
    # Terms found in fewer sentences say more about the question (an idf over the candidates).
    frequency = {term: sum(term in c.terms for c in candidates) for term in query}
    scored = []
    for candidate in candidates:
        matched = query & candidate.terms
        if not matched:
            continue
        weight = sum(math.log(1 + len(candidates) / frequency[t]) for t in matched)
        score = weight / math.sqrt(1 + len(candidate.terms)) + 0.01 / candidate.context_numbers[0]
        scored.append(ScoredSentence(score, tuple(candidate.context_numbers), candidate.position, candidate.text))
    scored.sort(key=lambda s: s.score, reverse=True)
    # A sentence far weaker than the best shares a word with the question rather than answering it.
    relevant = [s for s in scored if s.score >= RELATIVE_SCORE * scored[0].score] if scored else []
    return _within_budget(relevant, limit)


def _within_budget(ranked: list[ScoredSentence], limit: int) -> list[ScoredSentence]:
    """The best sentences that fit MAX_ANSWER_CHARS together; the best one alone is cut to fit if it must be."""
    chosen: list[ScoredSentence] = []
    used = 0
    for sentence in ranked:
        if len(chosen) == limit:
            break
        if not chosen and len(sentence.text) > MAX_ANSWER_CHARS:
            cut = sentence.text[: MAX_ANSWER_CHARS - 1].rsplit(" ", 1)[0] + "…"
            sentence = ScoredSentence(sentence.score, sentence.context_numbers, sentence.position, cut)
        if used + len(sentence.text) <= MAX_ANSWER_CHARS:
            chosen.append(sentence)
            used += len(sentence.text)
    return chosen


def _marker(numbers: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(n) for n in sorted(numbers)) + "]"


def extractive_answer_pieces(question: str, contexts: list[RetrievedChunk]) -> list[str]:
    best = best_sentences(question, contexts)
    if not best:
        return [NO_ANSWER]
    # Quote in reading order of the sources so the answer reads as a passage.
    best.sort(key=lambda s: (s.context_numbers[0], s.position))
    return [("" if i == 0 else " ") + f"{s.text} {_marker(s.context_numbers)}" for i, s in enumerate(best)]


class ExtractiveGenerator:
    name = "extractive"

    async def stream(self, question: str, contexts: list[RetrievedChunk]) -> AsyncIterator[str]:
        for piece in extractive_answer_pieces(question, contexts):
            yield piece

    async def check(self) -> None:
        return None
