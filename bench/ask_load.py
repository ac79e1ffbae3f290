"""/v1/ask under 32 concurrent clients with the extractive answerer: latency and throughput."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from bench.stats import load


async def measure(url: str, questions: Sequence[str], seconds: float, clients: int = 32) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients)) as client:

        async def one(i: int) -> None:
            body = {"question": questions[i % len(questions)], "collection": "scifact"}
            (await client.post("/v1/ask", json=body)).raise_for_status()

        return (await load(one, clients=clients, seconds=seconds)).__dict__
