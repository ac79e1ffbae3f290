"""How well a quotable sentence matches a question, judged by the embedder's cosine.

Words shared with the question cannot tell an answer from a sentence that merely mentions the
question's subject: "What is the office wifi password?" shares "password" with "send them through
the team's password manager", while "How quickly do I need to respond when on call?" shares only
"call" with its answer, "The on-call engineer answers pages within fifteen minutes". The
embedder that indexed the documents tells them apart (cosine 0.23 and 0.56 with
all-MiniLM-L6-v2). The thresholds are calibrated in `make bench` (section `answers`) on SciFact
claims whose evidence is, and is not, in the corpus, and on the example handbook.
"""

from __future__ import annotations

from enum import StrEnum

#: At or above: the sentence is quoted as the answer.
STRONG_SIMILARITY = 0.45
#: At or above (and under STRONG_SIMILARITY): quoted as the closest passage, saying it may not answer.
WEAK_SIMILARITY = 0.30


class Strength(StrEnum):
    STRONG = "strong"
    WEAK = "weak"
    NONE = "none"


def match_strength(similarity: float) -> Strength:
    if similarity >= STRONG_SIMILARITY:
        return Strength.STRONG
    return Strength.WEAK if similarity >= WEAK_SIMILARITY else Strength.NONE
