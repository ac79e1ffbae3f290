"""The offline answerer: quote the retrieved sentences that best match the question.

It cannot paraphrase or reason, but every word it says is in a cited source,
which makes it a safe default when no Gemini key is configured.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from ragcorp_service.generation.match_strength import Strength, match_strength
from ragcorp_service.generation.sentences import MIN_SENTENCE_WORDS, block_sentences, blocks, flat_text
from ragcorp_service.generation.terms import content_terms
from ragcorp_service.providers.embedders import Embedder
from ragcorp_service.retrieval.results import RetrievedChunk

NO_ANSWER = "I found nothing in the indexed documents that answers this question."
#: Said before the closest passage when it only weakly matches the question.
WEAK_MATCH = "The documents may not answer this; the closest passage I found says: "
#: An answer quotes at most this many characters of sources (a sentence alone past it is cut).
MAX_ANSWER_CHARS = 700
#: An answer quotes at most this many sentences.
ANSWER_SENTENCES = 3
#: Blocks (when choosing what to segment) scoring under this fraction of the best one are left out.
RELATIVE_SCORE = 0.5
#: Sentences sharing words with the question weighed by the embedder: at most this many (each is
#: an embedder run, 7-15 ms of a core; an answer quotes at most three), and none scoring under this
#: fraction of the best (one that only shares a common word is not worth embedding).
CANDIDATES = 3
CANDIDATE_SCORE = 0.3
#: Sentences quoted beside the best must be about as similar to the question.
SIMILARITY_MARGIN = 0.1


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
                pieces += [
                    (len(found), content_terms(p), number)
                    for p in _ROUGH_SENTENCE_END.split(block)
                    if len(p.split()) >= MIN_SENTENCE_WORDS  # a heading can outscore its paragraph, unquotable
                ]
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


def candidate_sentences(question: str, contexts: list[RetrievedChunk]) -> list[ScoredSentence]:
    """The sentences sharing the most (rarest) question terms, best first, each with every context
    that holds it: what the embedder then weighs against the question."""
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
    kept = [s for s in ranked if s.score >= CANDIDATE_SCORE * ranked[0].score][:CANDIDATES] if ranked else []
    flat_contexts = [flat_text(chunk.text) for chunk in contexts] if kept else []
    return [
        ScoredSentence(s.score, _sources(s.text, flat_contexts) or s.context_numbers, s.position, s.text) for s in kept
    ]


def answer_pieces(candidates: list[ScoredSentence], similarities: list[float]) -> list[str]:
    """The answer from the candidates and their similarity to the question (the embedder's cosine).

    A strong best match is quoted with the sentences close behind it; a weak one is quoted as the
    closest passage, saying it may not answer; below that the documents are taken not to hold it.
    """
    ranked = sorted(zip(similarities, candidates, strict=True), key=lambda pair: -pair[0])
    best = ranked[0][0] if ranked else 0.0
    strength = match_strength(best) if ranked else Strength.NONE
    if strength is Strength.NONE:
        return [NO_ANSWER]
    if strength is Strength.WEAK:
        [sentence] = _within_budget([ranked[0][1]], 1)
        return [WEAK_MATCH, f"{sentence.text} {_marker(sentence.context_numbers)}"]
    close = [s for similarity, s in ranked if similarity >= best - SIMILARITY_MARGIN]
    chosen = _within_budget(close, ANSWER_SENTENCES)
    # Quote in reading order of the sources so the answer reads as a passage.
    chosen.sort(key=lambda s: (s.context_numbers[0], s.position))
    return [("" if i == 0 else " ") + f"{s.text} {_marker(s.context_numbers)}" for i, s in enumerate(chosen)]


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


class ExtractiveGenerator:
    """Quotes; the embedder that indexed the documents judges how well a quote matches the question
    (a question and its answer often share few words: "respond" / "answers pages")."""

    name = "extractive"

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    async def stream(self, question: str, contexts: list[RetrievedChunk]) -> AsyncIterator[str]:
        for piece in await self.answer_pieces(question, contexts):
            yield piece

    async def answer_pieces(self, question: str, contexts: list[RetrievedChunk]) -> list[str]:
        return answer_pieces(*await self.judged(question, contexts))

    async def judged(self, question: str, contexts: list[RetrievedChunk]) -> tuple[list[ScoredSentence], list[float]]:
        """The candidate sentences and each one's cosine to the question (none embedded when there are none)."""
        candidates = candidate_sentences(question, contexts)
        if not candidates:
            return [], []
        return candidates, await self.similarities(question, [c.text for c in candidates])

    async def similarities(self, question: str, sentences: list[str]) -> list[float]:
        """The cosine of the question to each sentence (the vectors are unit length)."""
        question_vector, *vectors = await self.embedder.embed_documents([question, *sentences])
        return [float(np.dot(question_vector, vector)) for vector in vectors]

    async def check(self) -> None:
        return None
