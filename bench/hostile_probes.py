"""The second probe's hostile requests, rerun against a served process: 5xx answers, and how far
memory, `/metrics` series and open connections grow (issue 28's "done when").

Each probe is what the probe sent: made-up HTTP methods, unauthenticated 24 MB bodies three at
once, a 5 MB metadata value, concurrent title PATCH / DELETE / ingest sharing words (then the
postings checked against a fresh count), 300 bodies dribbling a byte every 2 s, and request
heads a proxy could read differently. The service runs with API keys, as in production.
"""

from __future__ import annotations

import asyncio
import random
import socket
import string
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil

from tests.support.postings_corpus import statistics_agree

KEY = "probe-key"
HEADERS = {"X-API-Key": KEY}
WORDS = ("tide", "moon", "wave", "harbour", "current", "shore", "salt", "reef")


def service_process(url: str) -> psutil.Process:
    port = urlsplit(url).port
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"nothing listens on {url}")


def _series(url: str) -> int:
    text = httpx.get(f"{url}/metrics", headers=HEADERS, timeout=30).text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def _raw(url: str, request: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(request)
        return connection.recv(4096)


async def _methods(url: str) -> dict[str, Any]:
    before = _series(url)
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(2000):
            method = "".join(random.choices(string.ascii_uppercase, k=12))
            statuses.append((await client.request(method, "/v1/search")).status_code)
    long_method = _raw(url, b"X" * 100_000 + b" /v1/search HTTP/1.1\r\nHost: x\r\n\r\n")
    return {
        "requests": 2001,
        "5xx": sum(s >= 500 for s in statuses) + long_method.startswith(b"HTTP/1.1 5"),
        "series_before": before,
        "series_after": _series(url),
    }


async def _unauthenticated_bodies(url: str, process: psutil.Process) -> dict[str, Any]:
    body = b" " * 24_000_000
    before = process.memory_info().rss
    peak = before
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        paths = ("/v1/search", "/v1/documents/batch", "/v1/documents")
        responses = await asyncio.gather(
            *(client.post(p, content=body, headers={"Content-Type": "application/json"}) for p in paths)
        )
    sampling = False
    await sampler
    return {
        "statuses": sorted({r.status_code for r in responses}),
        "rss_before_mb": round(before / 2**20),
        "rss_peak_mb": round(peak / 2**20),
    }


async def _races(url: str, database_url: str) -> dict[str, Any]:
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120) as client:

        async def ingest(n: int) -> str | None:
            text = " ".join(random.choices(WORDS, k=40)) + f" probe {n}."
            response = await client.post("/v1/documents", json={"title": " ".join(WORDS[:3]), "text": text})
            statuses.append(response.status_code)
            return str(response.json()["id"]) if response.status_code in (200, 201) else None

        ids = [i for i in await asyncio.gather(*(ingest(n) for n in range(40))) if i]

        async def churn(document_id: str, n: int) -> None:
            title = {"title": " ".join(random.sample(WORDS, 4))}
            for response in await asyncio.gather(
                client.patch(f"/v1/documents/{document_id}", json=title),
                client.delete(f"/v1/documents/{document_id}") if n % 2 else client.get("/livez"),
                ingest(1000 + n),
            ):
                if isinstance(response, httpx.Response):
                    statuses.append(response.status_code)

        await asyncio.gather(*(churn(document_id, n) for n, document_id in enumerate(ids)))
    connection = await asyncpg.connect(database_url)
    try:
        agree = await statistics_agree(connection)
    finally:
        await connection.close()
    return {"requests": len(statuses), "5xx": sum(s >= 500 for s in statuses), "statistics_agree": agree}


async def _dribblers(url: str, process: psutil.Process, deadline_seconds: float) -> dict[str, Any]:
    parts = urlsplit(url)
    head = (
        f"POST /v1/documents HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000\r\n\r\n"
    )

    async def dribble() -> bytes:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(head.encode())
        try:
            while True:
                writer.write(b"x")
                await writer.drain()
                try:
                    return await asyncio.wait_for(reader.read(200), 2.0)
                except TimeoutError:
                    continue
        except (ConnectionError, OSError):
            return b"closed"
        finally:
            writer.close()

    started = time.perf_counter()
    answers = await asyncio.gather(*(dribble() for _ in range(300)))
    return {
        "connections": 300,
        "answers": dict(
            Counter(a[9:12].decode(errors="replace") if a.startswith(b"HTTP/") else "closed" for a in answers)
        ),
        "all_done_after_s": round(time.perf_counter() - started, 1),
        "deadline_s": deadline_seconds,
        "open_connections_after": len(process.net_connections(kind="tcp")),
    }


def _status(answer: bytes) -> str:
    return answer[9:12].decode(errors="replace") if answer.startswith(b"HTTP/") else "closed"


def _smuggling(url: str) -> dict[str, Any]:
    heads = [
        b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /healthz HTTP/1.1\nHost: x\n\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
    ]
    return {"statuses": [_raw(url, head)[:12].decode(errors="replace") for head in heads]}


async def measure(url: str, database_url: str, deadline_seconds: float) -> dict[str, Any]:
    process = service_process(url)
    baseline = process.memory_info().rss
    results: dict[str, Any] = {"methods": await _methods(url)}
    waves = [await _unauthenticated_bodies(url, process) for _ in range(3)]  # growth that repeats is unbounded
    results["unauthenticated_24mb_x3"] = {
        "statuses": sorted({status for wave in waves for status in wave["statuses"]}),
        "rss_before_mb": waves[0]["rss_before_mb"],
        "rss_peak_mb_per_wave": [wave["rss_peak_mb"] for wave in waves],
    }
    metadata = {"title": "T", "text": "Some text.", "metadata": {"blob": "x" * 5_000_000}}
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120) as client:
        results["metadata_5mb"] = {"status": (await client.post("/v1/documents", json=metadata)).status_code}
    results["races"] = await _races(url, database_url)
    results["dribblers"] = await _dribblers(url, process, deadline_seconds)
    results["smuggling"] = _smuggling(url)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        healthz = (await client.get("/healthz")).status_code
    results["after"] = {
        "healthz": healthz,
        "rss_baseline_mb": round(baseline / 2**20),
        "rss_after_mb": round(process.memory_info().rss / 2**20),
    }
    return results


def lines(row: dict[str, Any]) -> list[str]:
    m, u, r, d, a = row["methods"], row["unauthenticated_24mb_x3"], row["races"], row["dribblers"], row["after"]
    return [
        f"2,001 made-up methods (one of 100,000 characters): {m['5xx']} 5xx; /metrics series "
        f"{m['series_before']} -> {m['series_after']}",
        f"three unauthenticated 24 MB bodies at once, three times: {u['statuses']}; RSS {u['rss_before_mb']} MB "
        f"before, peak per wave {u['rss_peak_mb_per_wave']} MB",
        f"a 5 MB metadata value: {row['metadata_5mb']['status']}",
        f"title edit / delete / ingest races: {r['requests']} requests, {r['5xx']} 5xx; postings agree with a "
        f"fresh count: {r['statistics_agree']}",
        f"300 ingest bodies dribbling a byte every 2 s: answers {d['answers']}, all done after "
        f"{d['all_done_after_s']} s (deadline {d['deadline_s']} s); open connections after "
        f"{d['open_connections_after']}",
        f"smuggling shapes (CL+TE, bare LF, folded): {', '.join(row['smuggling']['statuses'])}",
        f"after: /healthz {a['healthz']}; RSS {a['rss_baseline_mb']} MB at start, {a['rss_after_mb']} MB after",
    ]
