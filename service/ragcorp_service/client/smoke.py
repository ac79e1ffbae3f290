"""The smoke test the operator runs against a new version's preview Service.

It proves what a user needs before traffic moves: the version is up with all
its dependencies, runs the migrated schema, and can search and answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    detail: str


def run_smoke_test(url: str, api_key: str | None, expect_schema: str | None, timeout: float = 30.0) -> SmokeResult:
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as http:
            health = http.get("/healthz", params={"full": "true"})
            if health.status_code != 200:
                return SmokeResult(False, f"/healthz?full=true answered {health.status_code}: {health.text[:200]}")
            version = http.get("/version").json()
            if expect_schema and version.get("schema_revision") != expect_schema:
                return SmokeResult(
                    False, f"/version reports schema {version.get('schema_revision')}, expected {expect_schema}"
                )
            search = http.post("/v1/search", json={"query": "smoke test", "top_k": 1})
            if search.status_code != 200:
                return SmokeResult(False, f"/v1/search answered {search.status_code}: {search.text[:200]}")
            ask = http.post("/v1/ask", json={"question": "smoke test", "top_k": 1})
            if ask.status_code != 200 or "answer" not in ask.json():
                return SmokeResult(False, f"/v1/ask answered {ask.status_code}: {ask.text[:200]}")
    except (httpx.HTTPError, ValueError) as exc:
        return SmokeResult(False, f"{type(exc).__name__}: {exc}")
    return SmokeResult(True, f"healthy, schema {version.get('schema_revision')}, search and ask answered")
