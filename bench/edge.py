"""The service's edge under hostile uploads: how long `/healthz` takes while one parses.

A PDF whose 8 pages share one 5 MB content stream (16 KB on the wire) used to keep
every route unanswered for minutes; parsing now runs in a child process with a time
limit. This uploads it (and a 20 MB HTML page) to a service process and polls
`/healthz` ten times a second meanwhile, reporting the slowest answer.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.support.pdfs import stalling_pdf


def _upload_while_polling(service: str, name: str, content: bytes, media_type: str) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def upload() -> None:
        started = time.perf_counter()
        response = httpx.post(f"{service}/v1/documents", files={"files": (name, content, media_type)}, timeout=600)
        result.update(status=response.status_code, seconds=round(time.perf_counter() - started, 1))

    thread = threading.Thread(target=upload)
    thread.start()
    worst = 0.0
    polls = 0
    with httpx.Client(timeout=60) as http:
        while thread.is_alive():
            started = time.perf_counter()
            http.get(f"{service}/healthz")
            worst = max(worst, time.perf_counter() - started)
            polls += 1
            time.sleep(0.1)
    thread.join()
    return {**result, "bytes": len(content), "healthz_polls": polls, "healthz_worst_ms": round(worst * 1000, 1)}


def measure(service: str) -> dict[str, Any]:
    html = ("<html><body>" + "<p>tide table row</p>\n" * 1_000_000 + "</body></html>").encode()[:20_000_000]
    return {
        "stalling_pdf": _upload_while_polling(service, "stall.pdf", stalling_pdf(), "application/pdf"),
        "html_20mb": _upload_while_polling(service, "big.html", html, "text/html"),
    }
