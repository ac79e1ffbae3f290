"""The offline answerer: quote the retrieved sentences that best match the question.

It cannot paraphrase or reason, but every word it says is in a cited source,
which makes it a safe default when no Gemini key is configured.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache, lru_cache

import snowballstemmer

from ragcorp_service.generation.sentences import block_sentences, blocks, flat_text
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


@lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    """Snowball in pure Python costs ~70 µs a word, and an answer stems thousands: words repeat."""
    stem: str = _stemmer().stemWord(word)
    return stem


def content_terms(text: str) -> set[str]:
    return {_stem(w) for w in (w.lower() for w in _WORD.findall(text)) if w not in _STOPWORDS}


@dataclass(frozen=True)
class ScoredSentence:
    score: float
    #: Every context the sentence appears in (overlapping chunks repeat sentences), best-ranked first.
    context_numbers: tuple[int, ...]
    position: int
    text: str


@dataclass(frozen=True)
class _Candidate:
    text: str
    terms: set[str]
    context_number: int
    position: int


# Only to choose which blocks are worth the segmenter's time: quotes are always its sentences.
_ROUGH_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
#: Blocks whose best rough sentences rank highest, segmented for real (an answer quotes at most 3).
SEGMENTED_BLOCKS = 4


def _scores(query: set[str], candidates: list[tuple[set[str], int]]) -> list[float]:
    """Each (terms, context number)'s score: the idf of the question terms it holds (terms found in
    fewer candidates say more), over its length, best-ranked contexts first on ties."""
    frequency = {term: sum(term in terms for terms, _ in candidates) for term in query}
    scores = []
    for terms, number in candidates:
        matched = query & terms
        weight = sum(math.log(1 + len(candidates) / frequency[t]) for t in matched)
        scores.append(weight / math.sqrt(1 + len(terms)) + 0.01 / number if matched else 0.0)
    return scores


def _promising_blocks(query: set[str], contexts: list[RetrievedChunk]) -> list[tuple[int, str]]:
    """(context number, block) for the few blocks holding the best-matching text, in reading order.

    pySBD takes ~4 ms a SciFact abstract, most of an answer's cost, so it only runs where a quote
    can come from: blocks are ranked by their best piece under a cheap split at `. Capital`
    (wrong at abbreviations, which only blurs the ranking), and the top SEGMENTED_BLOCKS are kept.
    """
    pieces: list[tuple[int, set[str], int]] = []  # (block index, terms, context number)
    found: list[tuple[int, str]] = []
    for number, chunk in enumerate(contexts, 1):
        for block in blocks(chunk.text):
            if query & content_terms(block):
                pieces += [(len(found), content_terms(p), number) for p in _ROUGH_SENTENCE_END.split(block)]
                found.append((number, block))
    scores = _scores(query, [(terms, number) for _, terms, number in pieces])
    kept: list[int] = []
    for score, (index, *_) in sorted(zip(scores, pieces, strict=True), key=lambda pair: -pair[0]):
        if score < RELATIVE_SCORE * max(scores) or len(kept) == SEGMENTED_BLOCKS:
            break
        if index not in kept:
            kept.append(index)
    return [found[index] for index in sorted(kept)]


def _candidates(query: set[str], contexts: list[RetrievedChunk]) -> list[_Candidate]:
    """The distinct sentences of the promising blocks, each once (overlapping chunks repeat text)."""
    found: dict[str, _Candidate] = {}
    for number, block in _promising_blocks(query, contexts):
        for sentence in block_sentences(block):
            key = " ".join(sentence.lower().split())
            if key not in found:
                found[key] = _Candidate(sentence, content_terms(sentence), number, len(found))
    return list(found.values())


def _sources(sentence: str, flat_contexts: list[str]) -> tuple[int, ...]:
    """Every context whose text (flattened as quotes are) holds the sentence."""
    wanted = " ".join(sentence.split())
    return tuple(n for n, text in enumerate(flat_contexts, 1) if wanted in text)


def best_sentences(question: str, contexts: list[RetrievedChunk], limit: int = 3) -> list[ScoredSentence]:
    """Sentences sharing the most (rarest) question terms, best-ranked contexts first on ties."""
    query = content_terms(question)
    if not query:
        return []
    candidates = _candidates(query, contexts)
    scores = _scores(query, [(c.terms, c.context_number) for c in candidates])
    ranked = sorted(
        (
            ScoredSentence(score, (c.context_number,), c.position, c.text)
            for score, c in zip(scores, candidates, strict=True)
            if score > 0
        ),
        key=lambda s: s.score,
        reverse=True,
    )
    # A sentence far weaker than the best shares a word with the question rather than answering it.
    relevant = [s for s in ranked if s.score >= RELATIVE_SCORE * ranked[0].score] if ranked else []
    chosen = _within_budget(relevant, limit)
    flat_contexts = [flat_text(chunk.text) for chunk in contexts] if chosen else []
    return [
        ScoredSentence(s.score, _sources(s.text, flat_contexts) or s.context_numbers, s.position, s.text)
        for s in chosen
    ]


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
