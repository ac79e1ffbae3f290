"""Does the offline answerer know when it doesn't know? Rates on questions with and without answers.

SciFact's claims are asked twice: once as the service retrieves for them (the claim's evidence
among the contexts: it should answer, quoting a relevant abstract), once with every chunk of the
claim's evidence taken out of a deeper result list, the contexts topped up from below (as if the
evidence had never been ingested: it should say so, or at most hedge). The example handbook's
questions (examples/questions.json) are asked of the running service as users ask them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import numpy as np

from ragcorp_service.generation.citations import cited_numbers
from ragcorp_service.generation.extractive import (
    NO_ANSWER,
    WEAK_MATCH,
    ExtractiveGenerator,
    answer_pieces,
)
from ragcorp_service.generation.match_strength import STRONG_SIMILARITY, WEAK_SIMILARITY
from ragcorp_service.providers.embedders import Embedder
from ragcorp_service.retrieval.results import RetrievedChunk

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONTEXTS = 5  # the ask's default top_k
DEEPER = 40


def outcome(answer: str) -> str:
    if answer == NO_ANSWER:
        return "none"
    return "weak" if answer.startswith(WEAK_MATCH) else "strong"


async def scifact(
    url: str, queries: dict[str, str], qrels: dict[str, dict[str, int]], embedder: Embedder
) -> dict[str, Any]:
    generator = ExtractiveGenerator(embedder)
    with_evidence: dict[str, int] = {"strong": 0, "weak": 0, "none": 0, "quoted_evidence": 0}
    without: dict[str, int] = {"strong": 0, "weak": 0, "none": 0}
    best: dict[str, list[float]] = {"with": [], "without": []}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for query_id, question in queries.items():
            relevant = set(qrels.get(query_id, {}))
            body = {"query": question, "collection": "scifact", "top_k": DEEPER}
            hits = [
                _chunk(h) for h in (await client.post("/v1/search", json=body)).raise_for_status().json()["results"]
            ]
            asked = hits[:CONTEXTS]
            if any(_beir_id(c) in relevant for c in asked):
                answer, similarity = await _answered(generator, question, asked)
                with_evidence[outcome(answer)] += 1
                cited = _first_cited(answer, asked)
                with_evidence["quoted_evidence"] += outcome(answer) == "strong" and _beir_id(cited) in relevant
                best["with"].append(similarity)
            others = [c for c in hits if _beir_id(c) not in relevant][:CONTEXTS]
            answer, similarity = await _answered(generator, question, others)
            without[outcome(answer)] += 1
            best["without"].append(similarity)
    return {
        "questions": len(queries),
        "with_evidence": with_evidence,
        "without_evidence": without,
        "best_similarity_median": {k: round(float(np.median(v)), 3) for k, v in best.items() if v},
        "thresholds": {"strong": STRONG_SIMILARITY, "weak": WEAK_SIMILARITY},
    }


async def handbook(url: str) -> dict[str, Any]:
    """The example questions asked of the running service, after ingesting examples/docs."""
    labelled = json.loads((EXAMPLES / "questions.json").read_text())
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        files = [("files", (p.name, p.read_bytes())) for p in sorted((EXAMPLES / "docs").iterdir())]
        (await client.post("/v1/documents", files=files, data={"collection": "handbook"})).raise_for_status()
        answered = {"strong": 0, "weak": 0, "none": 0, "quoted_expected": 0}
        for question, sentence in labelled["answered"].items():
            answer = await _ask(client, question)
            answered[outcome(answer)] += 1
            answered["quoted_expected"] += sentence in answer
        unanswered = {"strong": 0, "weak": 0, "none": 0}
        for question in labelled["not_in_documents"]:
            unanswered[outcome(await _ask(client, question))] += 1
    return {"answered": answered, "not_in_documents": unanswered}


async def _ask(client: httpx.AsyncClient, question: str) -> str:
    body = {"question": question, "collection": "handbook"}
    answer: str = (await client.post("/v1/ask", json=body)).raise_for_status().json()["answer"]
    return answer


async def _answered(generator: ExtractiveGenerator, question: str, contexts: list[RetrievedChunk]) -> tuple[str, float]:
    """The answer, as `ExtractiveGenerator.answer_pieces` makes it, and the best candidate's cosine
    (from one judgement: the sentences are embedded once)."""
    candidates, similarities = await generator.judged(question, contexts)
    return "".join(answer_pieces(candidates, similarities)), max(similarities, default=0.0)


def _chunk(hit: dict[str, Any]) -> RetrievedChunk:
    return RetrievedChunk(
        hit["chunk_id"], UUID(hit["document_id"]), hit["title"], hit["text"], hit["score"], "scifact", hit["metadata"]
    )


def _beir_id(chunk: RetrievedChunk | None) -> str | None:
    return None if chunk is None else str(chunk.metadata.get("beir_id"))


def _first_cited(answer: str, contexts: list[RetrievedChunk]) -> RetrievedChunk | None:
    numbers = cited_numbers(answer)
    return contexts[numbers[0] - 1] if numbers else None


def _rates(row: dict[str, int], total: int) -> str:
    return ", ".join(f"{key} {100 * value / max(total, 1):.0f}%" for key, value in row.items())


def lines(row: dict[str, Any]) -> list[str]:
    found = []
    if s := row.get("scifact"):
        with_total = sum(s["with_evidence"][k] for k in ("strong", "weak", "none"))
        found.append(
            f"SciFact claims, evidence among the contexts ({with_total}): {_rates(s['with_evidence'], with_total)}"
        )
        found.append(
            f"SciFact claims, evidence taken out ({s['questions']}): {_rates(s['without_evidence'], s['questions'])}; "
            f"median best similarity {s['best_similarity_median']}"
        )
    if h := row.get("handbook"):
        found.append(f"handbook, answered in the documents (10): {h['answered']}")
        found.append(f"handbook, not in the documents (10): {h['not_in_documents']}")
    return found
