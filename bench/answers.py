"""What the offline answerer says for SciFact's questions: whole sentences, each once, every marker cited.

It asks the running service (the answers users get), then times the answerer alone on the same
contexts (`/v1/search` with the ask's defaults), which is its share of an ask's latency.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import httpx

from bench.stats import Latency
from ragcorp_service.generation.citations import cited_numbers
from ragcorp_service.generation.extractive import NO_ANSWER, WEAK_MATCH, ExtractiveGenerator
from ragcorp_service.providers.embedders import Embedder
from ragcorp_service.retrieval.results import RetrievedChunk

_QUOTE = re.compile(r"(.+?) \[\d+(?:, \d+)*\](?: |$)")


async def measure(url: str, questions: Sequence[str], embedder: Embedder) -> dict[str, Any]:
    generator = ExtractiveGenerator(embedder)
    sentences: list[int] = []
    lengths: list[int] = []
    unfinished = repeated = uncited = no_answer = 0
    examples: list[str] = []
    timings: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for question in questions:
            body = {"question": question, "collection": "scifact"}
            answer = (await client.post("/v1/ask", json=body)).raise_for_status().json()
            if answer["answer"] == NO_ANSWER or answer["answer"].startswith(WEAK_MATCH):
                no_answer += 1
                continue
            quotes = _QUOTE.findall(answer["answer"])
            sentences.append(len(quotes))
            lengths.append(len(answer["answer"]))
            cut = [q for q in quotes if not q.rstrip("\"')]").endswith((".", "!", "?", "…"))]
            unfinished += len(cut)
            examples += [q[-80:] for q in cut][: 3 - len(examples)]
            repeated += len(quotes) - len(set(quotes))
            uncited += len(set(cited_numbers(answer["answer"])) - {c["number"] for c in answer["citations"]})

            search = {"query": question, "collection": "scifact"}
            hits = (await client.post("/v1/search", json=search)).raise_for_status().json()
            contexts = [
                RetrievedChunk(h["chunk_id"], UUID(h["document_id"]), h["title"], h["text"], h["score"], "", {})
                for h in hits["results"]
            ]
            started = time.perf_counter()
            await generator.answer_pieces(question, contexts)
            timings.append(time.perf_counter() - started)
    answered = len(sentences)
    return {
        "questions": len(questions),
        "answered": answered,
        "no_answer": no_answer,
        "sentences_per_answer": round(sum(sentences) / max(answered, 1), 2),
        "chars_mean": round(sum(lengths) / max(answered, 1)),
        "chars_max": max(lengths, default=0),
        "quotes_not_ending_a_sentence": unfinished,
        "quotes_not_ending_a_sentence_examples": examples,
        "sentences_repeated_in_an_answer": repeated,
        "markers_without_citation": uncited,
        "answerer_alone": Latency.of(timings, sum(timings)).__dict__,
    }


def line(row: dict[str, Any]) -> str:
    alone = row["answerer_alone"]
    return (
        f"{row['answered']}/{row['questions']} answered, {row['sentences_per_answer']} sentences and "
        f"{row['chars_mean']} characters on average (max {row['chars_max']}); quotes not ending a sentence "
        f"{row['quotes_not_ending_a_sentence']}, repeated sentences {row['sentences_repeated_in_an_answer']}, "
        f"markers without a citation {row['markers_without_citation']}; the answerer alone "
        f"{alone['p50_ms']} / {alone['p95_ms']} ms (p50 / p95)"
    )
