"""Keys and scopes on every route, rate limits, CORS, metrics, traces and request ids."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragcorp_service.api.auth import AUTH_FAILURES_BURST
from ragcorp_service.app.main import create_app
from ragcorp_service.settings import SettingsError, load_settings
from tests.support.corpus import DOCUMENTS
from tests.support.service_app import ClientFactory

KEYS = "ingest-key:ingest;ask-key:ask;metrics-key:metrics;all-key:ingest,ask,metrics"
DOC = "00000000-0000-0000-0000-000000000000"
#: Every route that needs a key, with a request that passes validation, and its scope.
ROUTES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/documents", {"json": {"title": "t", "text": "some text"}}, "ingest"),
    ("POST", "/v1/documents/batch", {"json": {"documents": [{"title": "t", "text": "x"}]}}, "ingest"),
    ("DELETE", f"/v1/documents/{DOC}", {}, "ingest"),
    ("GET", "/v1/documents", {}, "ask"),
    ("GET", f"/v1/documents/{DOC}", {}, "ask"),
    ("POST", "/v1/search", {"json": {"query": "q", "mode": "keyword"}}, "ask"),
    ("POST", "/v1/ask", {"json": {"question": "q", "mode": "keyword"}}, "ask"),
    ("GET", "/metrics", {}, "metrics"),
]


@pytest.fixture
async def secured(client_for: ClientFactory) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(api_keys=KEYS, rate_limit_rps=1000)
    return client


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs", "scope"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
async def test_each_scope_is_allowed_and_the_others_denied(
    secured: httpx.AsyncClient, method: str, path: str, request_kwargs: dict[str, Any], scope: str
) -> None:
    for key_scope in ("ingest", "ask", "metrics"):
        response = await secured.request(method, path, headers={"X-API-Key": f"{key_scope}-key"}, **request_kwargs)
        if key_scope == scope:
            assert response.status_code not in (401, 403), (key_scope, response.text)
        else:
            assert response.status_code == 403, (key_scope, response.text)
            assert f"lacks the '{scope}' scope" in response.json()["detail"]
    bearer = await secured.request(method, path, headers={"Authorization": "Bearer all-key"}, **request_kwargs)
    assert bearer.status_code not in (401, 403)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        ({"X-API-Key": "wrong-s3cret"}, "invalid API key"),
        ({"Authorization": "Bearer wrong-s3cret"}, "invalid API key"),
        ({"Authorization": "Basic d3Jvbmc="}, "unsupported Authorization scheme"),
        ({"Authorization": "Bearer"}, "unsupported Authorization scheme"),
    ],
)
async def test_missing_wrong_and_malformed_keys_are_401(
    secured: httpx.AsyncClient, headers: dict[str, str], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await secured.post("/v1/search", json={"query": "q"}, headers=headers)
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "s3cret" not in response.text and "s3cret" not in caplog.text


async def test_key_guessing_is_slowed_per_address_and_counted(secured: httpx.AsyncClient) -> None:
    for attempt in range(AUTH_FAILURES_BURST):
        guess = await secured.post("/v1/search", json={"query": "q"}, headers={"X-API-Key": f"guess-{attempt}"})
        assert guess.status_code == 401
    blocked = await secured.post("/v1/search", json={"query": "q"}, headers={"X-API-Key": "guess-again"})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    assert "failed authentications" in blocked.json()["detail"]
    missing = await secured.post("/v1/search", json={"query": "q"})
    assert missing.status_code == 429  # no key at all is a failed authentication too
    assert (await secured.get("/healthz")).status_code == 200  # probes are never limited
    # Another address is not held back by this one's guessing.
    other = httpx.ASGITransport(app=secured._transport.app, client=("192.0.2.7", 4000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as elsewhere:
        metrics = await elsewhere.get("/metrics", headers={"X-API-Key": "metrics-key"})
    assert metrics.status_code == 200
    assert f"ragcorp_auth_failures_total {AUTH_FAILURES_BURST + 2}.0" in metrics.text


async def test_failed_authentications_never_lock_out_a_valid_key_from_the_same_address(
    secured: httpx.AsyncClient,
) -> None:
    """Behind an ingress every client has the ingress's address: one client retrying a stale key
    must not take the service away from the others."""
    for attempt in range(AUTH_FAILURES_BURST + 5):
        await secured.post("/v1/search", json={"query": "q"}, headers={"X-API-Key": f"stale-{attempt}"})
    stale = await secured.post("/v1/search", json={"query": "q"}, headers={"X-API-Key": "stale"})
    assert stale.status_code == 429
    valid = await secured.post("/v1/search", json={"query": "q"}, headers={"X-API-Key": "ask-key"})
    assert valid.status_code == 200, valid.text


async def test_health_and_version_need_no_key(secured: httpx.AsyncClient) -> None:
    assert (await secured.get("/healthz")).status_code == 200
    assert (await secured.get("/version")).status_code == 200


async def test_a_burst_over_the_limit_gets_429_then_recovers(client_for: ClientFactory) -> None:
    # A token every 2 s: the burst runs out however slowly this machine serves the four requests.
    client = await client_for(api_keys="k:ask", rate_limit_rps=0.5, rate_limit_burst=3)
    headers = {"X-API-Key": "k"}
    statuses = [
        (await client.post("/v1/search", json={"query": "q", "mode": "keyword"}, headers=headers)).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = await client.post("/v1/search", json={"query": "q", "mode": "keyword"}, headers=headers)
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 2
    assert "RATE_LIMIT_RPS" in limited.json()["detail"]
    assert (await client.get("/healthz")).status_code == 200  # probes are never limited
    await asyncio.sleep(2.1)  # a token's worth, whatever happened in between
    assert (await client.post("/v1/search", json={"query": "q", "mode": "keyword"}, headers=headers)).status_code == 200


async def test_cors_allows_only_the_configured_origins(client_for: ClientFactory) -> None:
    client = await client_for(allowed_origins="https://app.example.com")
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key,content-type"}
    allowed = await client.options("/v1/search", headers={"Origin": "https://app.example.com", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = await client.options("/v1/search", headers={"Origin": "https://evil.example", **preflight})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


async def test_cors_allows_nothing_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers


async def test_too_many_files_in_one_upload_is_rejected_with_the_limit(client_for: ClientFactory) -> None:
    client = await client_for(max_upload_files=2)
    files = [("files", (f"n{i}.txt", b"text")) for i in range(3)]
    response = await client.post("/v1/documents", files=files)
    assert response.status_code == 413
    assert "MAX_UPLOAD_FILES" in response.json()["detail"]


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if found == wanted:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_report_requests_latency_pool_providers_and_totals(client_for: ClientFactory) -> None:
    client = await client_for(api_keys="all:ingest,ask,metrics;m:metrics", rate_limit_rps=1000)
    headers = {"X-API-Key": "all"}
    await client.post("/v1/documents/batch", json={"documents": DOCUMENTS}, headers=headers)
    for _ in range(2):
        await client.post("/v1/search", json={"query": "lava"}, headers=headers)
    await client.post("/v1/search", json={"query": ""}, headers=headers)
    scrape = await client.get("/metrics", headers={"X-API-Key": "m"})
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert sample(text, "ragcorp_http_requests_total", method="POST", route="/v1/search", status="200") == 2
    assert sample(text, "ragcorp_http_requests_total", method="POST", route="/v1/search", status="422") == 1
    assert sample(text, "ragcorp_http_request_duration_seconds_count", method="POST", route="/v1/search") == 3
    assert sample(text, "ragcorp_provider_duration_seconds_count", operation="embed", provider="local") >= 3
    assert "ragcorp_db_pool_connections " in text and "ragcorp_http_requests_in_flight " in text
    assert re.search(r"^ragcorp_documents 3\.0$", text, re.MULTILINE)
    assert re.search(r"^ragcorp_chunks [1-9]", text, re.MULTILINE)


async def test_a_trace_has_our_spans(settings: Any) -> None:
    exporter = InMemorySpanExporter()
    app = create_app(settings, span_exporter=exporter)
    async with (
        LifespanManager(app, startup_timeout=120),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        await client.post("/v1/documents", json=DOCUMENTS[0])
        await client.post("/v1/ask", json={"question": "Where does photosynthesis happen?"})
    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    assert {"embed", "retrieve", "generate"} <= names, names
    assert any(name.startswith("POST /v1/ask") for name in names)
    assert any(span.attributes and span.attributes.get("db.system") == "postgresql" for span in spans)
    ask_trace = next(s for s in spans if s.name == "generate").context.trace_id
    assert {"embed", "retrieve"} <= {s.name for s in spans if s.context.trace_id == ask_trace}


async def test_request_id_round_trip_and_logs(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ragcorp.access")
    echoed = await client.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
    assert echoed.headers["x-request-id"] == "trace-abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    access = [r for r in caplog.records if r.name == "ragcorp.access"]
    assert [getattr(r, "request_id", None) for r in access] == ["trace-abc-123", generated.headers["x-request-id"]]


def test_every_log_line_written_during_a_request_carries_its_id() -> None:
    from ragcorp_service.app.observability import RequestIdFilter, request_id_var

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "message", None, None)
    token = request_id_var.set("rid-1")
    try:
        assert RequestIdFilter().filter(record) and record.request_id == "rid-1"  # type: ignore[attr-defined]
    finally:
        request_id_var.reset(token)


def test_refuses_to_start_open_on_a_public_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_KEYS", raising=False)
    monkeypatch.setenv("HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match="ALLOW_ANONYMOUS=1"):
        load_settings(serving=True)
    with pytest.raises(SettingsError, match="ALLOW_ANONYMOUS=1"):
        create_app()
    assert load_settings().api_keys is None  # commands that do not serve (migrations) need no keys
    monkeypatch.setenv("ALLOW_ANONYMOUS", "1")
    assert load_settings(serving=True).allow_anonymous
    monkeypatch.setenv("ALLOW_ANONYMOUS", "0")
    monkeypatch.setenv("API_KEYS", "k:ask")
    assert load_settings().api_key_scopes == {"k": frozenset({"ask"})}


async def test_a_key_limited_to_collections_reads_and_writes_only_those(client_for: ClientFactory) -> None:
    """`key:scopes:collections`: searches, answers and listings see only the key's collections; a
    document elsewhere is refused by collection (403) and does not exist by id (404)."""
    client = await client_for(api_keys="admin:ingest,ask;team:ingest,ask:handbook", rate_limit_rps=1000)
    admin, team = {"X-API-Key": "admin"}, {"X-API-Key": "team"}
    own = {"title": "Handbook", "text": "The volcano drill is on Fridays.", "collection": "handbook"}
    other = {"title": "Plans", "text": "The volcano budget is secret.", "collection": "secret"}
    assert (await client.post("/v1/documents", json=own, headers=admin)).status_code == 201
    hidden = (await client.post("/v1/documents", json=other, headers=admin)).json()["id"]
    refused = await client.post("/v1/documents", json={**other, "text": "More."}, headers=team)
    assert refused.status_code == 403 and "secret" in refused.json()["detail"]
    hits = (await client.post("/v1/search", json={"query": "volcano"}, headers=team)).json()["results"]
    assert hits and {hit["collection"] for hit in hits} == {"handbook"}
    named = await client.post("/v1/search", json={"query": "volcano", "collection": "secret"}, headers=team)
    assert named.status_code == 403
    answer = (await client.post("/v1/ask", json={"question": "When is the volcano drill?"}, headers=team)).json()
    assert answer["citations"] and all(c["title"] == "Handbook" for c in answer["citations"])
    listed = (await client.get("/v1/documents", headers=team)).json()
    assert listed["total"] == 1 and listed["documents"][0]["collection"] == "handbook"
    assert (await client.get("/v1/documents", params={"collection": "secret"}, headers=team)).status_code == 403
    assert (await client.get(f"/v1/documents/{hidden}", headers=team)).status_code == 404
    assert (await client.patch(f"/v1/documents/{hidden}", json={"title": "X"}, headers=team)).status_code == 404
    assert (await client.delete(f"/v1/documents/{hidden}", headers=team)).status_code == 404
    assert (await client.get(f"/v1/documents/{hidden}", headers=admin)).json()["title"] == "Plans"
