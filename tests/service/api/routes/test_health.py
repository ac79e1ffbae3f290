"""Health and version: what probes and the smoke test rely on."""

from __future__ import annotations

import re

import httpx

from ragcorp_service.db.migrations import head_revision
from tests.support.postgres import PostgresForTests
from tests.support.service_app import ClientFactory


async def test_health_reports_the_database_and_full_adds_the_generator(client: httpx.AsyncClient) -> None:
    plain = await client.get("/healthz")
    assert plain.status_code == 200
    assert set(plain.json()["checks"]) == {"database"}
    full = await client.get("/healthz", params={"full": "true"})
    assert full.status_code == 200
    checks = full.json()["checks"]
    assert checks["generator"]["status"] == "ok" and checks["generator"]["name"] == "extractive"
    assert checks["database"]["latency_ms"] >= 0


async def test_version_reports_schema_and_embedder(client: httpx.AsyncClient) -> None:
    body = (await client.get("/version")).json()
    assert body["schema_revision"] == head_revision()
    # The model, its backend, quantisation and export recipe (a digest): what the database records.
    assert re.fullmatch(r"all-MiniLM-L6-v2:onnx-int8-[0-9a-f]{6}", body["embedding_model"])
    assert body["embedding_dimensions"] == 384


async def test_database_outage_is_a_503_not_a_crash(
    client_for: ClientFactory, postgres: PostgresForTests, database_url: str
) -> None:
    client = await client_for()
    name = postgres.database_of(database_url)
    postgres.sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    postgres.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["checks"]["database"]["status"] == "unavailable"
        assert health.headers["retry-after"] == "5"
        search = await client.post("/v1/search", json={"query": "anything", "mode": "keyword"})
        assert search.status_code == 503 and search.headers["retry-after"] == "5"
        assert "database is unavailable" in search.json()["detail"]
    finally:
        postgres.sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert (await client.get("/healthz")).status_code == 200  # the pool recovers by itself


async def test_openapi_describes_every_contract_route(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/healthz", "/version", "/v1/documents", "/v1/documents/{document_id}", "/v1/search", "/v1/ask"):
        assert path in paths
    assert "multipart/form-data" in paths["/v1/documents"]["post"]["requestBody"]["content"]
