"""Input a hostile (or careless) client sends: every case is a 4xx with a JSON detail, never a 500.

The bodies are raw bytes on purpose: NaN, Infinity, 1e400 and lone surrogates are valid
for Python's JSON parser but not values the service can store or search.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.support.pdfs import inflating_pdf, stalling_pdf
from tests.support.service_app import ClientFactory

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400"]
SURROGATE = '"\\ud800"'
DOC = '{"title": "T", "text": "Some text about tides."'


def assert_refused(response: httpx.Response, *words: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    detail = json.dumps(response.json()["detail"])
    for word in words:
        assert word in detail, (word, detail)


def post_raw(client: httpx.AsyncClient, path: str, body: str | bytes) -> object:
    return client.post(path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("number", NON_FINITE)
async def test_non_finite_numbers_are_refused_everywhere(client: httpx.AsyncClient, number: str) -> None:
    cases = [
        ("/v1/search", f'{{"query": "tides", "filters": {{"x": {number}}}}}', "finite"),
        ("/v1/search", f'{{"query": "tides", "top_k": {number}}}', "top_k"),
        ("/v1/ask", f'{{"question": "tides", "filters": {{"x": {number}}}}}', "finite"),
        ("/v1/documents", f'{DOC}, "metadata": {{"x": {number}}}}}', "finite"),
        ("/v1/documents/batch", f'{{"documents": [{DOC}, "metadata": {{"x": [{number}]}}}}]}}', "finite"),
    ]
    for path, body, word in cases:
        assert_refused(await post_raw(client, path, body), word)  # type: ignore[arg-type]
    upload = await client.post(
        "/v1/documents", files={"files": ("a.txt", b"Tides.")}, data={"metadata": f'{{"x": {number}}}'}
    )
    assert_refused(upload, "finite")


async def test_lone_surrogates_are_refused(client: httpx.AsyncClient) -> None:
    for path, body in [
        ("/v1/search", f'{{"query": {SURROGATE}}}'),
        ("/v1/search", f'{{"query": "tides", "filters": {{"k": {SURROGATE}}}}}'),
        ("/v1/ask", f'{{"question": {SURROGATE}}}'),
        ("/v1/documents/batch", f'{{"documents": [{{"title": "T", "text": {SURROGATE}}}]}}'),
    ]:
        assert_refused(await post_raw(client, path, body), "surrogate")  # type: ignore[arg-type]


async def test_invalid_utf8_inside_a_json_body_is_refused(client: httpx.AsyncClient) -> None:
    body = b'{"title": "T", "text": "caf\xe9 au lait"}'
    for path in ("/v1/documents", "/v1/search"):
        response = await post_raw(client, path, body)
        assert 400 <= response.status_code < 500, response.text  # type: ignore[attr-defined]
        response.json()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("metadata", "word"),
    [
        ('{"a": ' * 1500 + "1" + "}" * 1500, "metadata"),
        ('{"a": "nul\\u0000"}', "NUL"),
        ('{"a": NaN}', "finite"),
        ('{"a": ' + "9" * 5000 + "}", "metadata"),
    ],
    ids=["nested-1500", "nul", "nan", "5000-digits"],
)
async def test_hostile_multipart_metadata_is_refused(client: httpx.AsyncClient, metadata: str, word: str) -> None:
    response = await client.post("/v1/documents", files={"files": ("a.txt", b"Tides.")}, data={"metadata": metadata})
    assert_refused(response, word)


async def test_a_file_name_with_a_nul_byte_is_refused(client: httpx.AsyncClient) -> None:
    # Written by hand: httpx would percent-encode the NUL, a hostile client does not.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="a\x00b.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nTides.\r\n--b--\r\n"
    )
    response = await client.post(
        "/v1/documents", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert_refused(response, "NUL")
    assert (await client.get("/v1/documents")).json()["total"] == 0


async def test_deeply_nested_json_bodies_are_refused(client: httpx.AsyncClient) -> None:
    deep = '{"query": "tides", "filters": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}"
    assert_refused(await post_raw(client, "/v1/search", deep), "nested")  # type: ignore[arg-type]


async def test_an_unexpected_error_is_still_json(app: FastAPI) -> None:
    """A 500 (a bug) keeps the API's error shape, so clients can always parse the body."""

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    # Starlette answers, then re-raises for the server's log; a server would not pass that to the client.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


async def test_a_pdf_that_inflates_past_the_limit_is_refused_by_name(client: httpx.AsyncClient) -> None:
    bomb = inflating_pdf(100)
    assert len(bomb) < 1_000_000
    response = await client.post("/v1/documents", files={"files": ("bomb.pdf", bomb, "application/pdf")})
    assert response.status_code == 413, response.text
    assert "bomb.pdf" in response.json()["detail"] and "limit" in response.json()["detail"]


async def test_a_text_file_of_only_nul_bytes_is_not_stored_as_an_empty_document(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/documents", files={"files": ("nul.txt", b"\x00" * 64)})
    assert_refused(response, "no text")
    assert (await client.get("/v1/documents")).json()["total"] == 0


async def test_a_file_that_parses_slowly_is_cut_off_and_health_answers_meanwhile(client_for: ClientFactory) -> None:
    client = await client_for(parse_timeout_seconds=2)
    stall = stalling_pdf()
    assert len(stall) < 100_000
    upload = asyncio.create_task(client.post("/v1/documents", files={"files": ("stall.pdf", stall, "application/pdf")}))
    await asyncio.sleep(0.5)
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert not upload.done(), "the health check had to wait for the parse"
    response = await upload
    assert response.status_code == 413, response.text
    assert "PARSE_TIMEOUT_SECONDS" in response.json()["detail"]


async def test_made_up_http_methods_do_not_mint_metric_series(client_for: ClientFactory) -> None:
    """No key needed to send a method; every unknown one is counted as "other", so /metrics stays
    the size it was (2,000 random methods once made 36,000 series)."""
    client = await client_for(api_keys="m:metrics", rate_limit_rps=1000)
    for index in range(50):
        response = await client.request(f"BREW{index}X" * 20, "/v1/search")
        assert response.status_code in (405, 401), response.status_code
    scrape = (await client.get("/metrics", headers={"X-API-Key": "m"})).text
    methods = {line.split('method="')[1].split('"')[0] for line in scrape.splitlines() if 'method="' in line}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, methods
    assert 'method="other"' in scrape


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "\u200b\u200b"), ("text", "\u2060 \u200b\ufeff"), ("title", "\u3164"), ("text", "\u202e\u202c")],
)
async def test_titles_and_texts_of_only_invisible_characters_are_refused(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    document = {"title": "Visible", "text": "Visible text.", field: value}
    response = await client.post("/v1/documents", json=document)
    assert response.status_code == 422 and "no visible characters" in response.text


async def test_bidirectional_controls_leave_titles_and_text_is_compared_in_nfc(client: httpx.AsyncClient) -> None:
    """A title cannot read as another name; "é" typed as one or two code points is one document."""
    first = await client.post("/v1/documents", json={"title": "invoice\u202eexe.pdf", "text": "Caf\u00e9 hours."})
    assert first.status_code == 201 and first.json()["title"] == "invoiceexe.pdf"
    again = await client.post("/v1/documents", json={"title": "Other", "text": "Cafe\u0301 hours."})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("metadata", "word"),
    [
        ({"blob": "x" * 1001}, "1000"),
        ({"tags": ["t"] * 101}, "100"),
        ({"tags": ["x" * 257]}, "256"),
        ({f"k{i}": "y" * 900 for i in range(20)}, "16384"),
    ],
)
async def test_metadata_is_bounded_at_ingest_and_patch(client: httpx.AsyncClient, metadata: dict, word: str) -> None:
    """Metadata comes back with every hit: one 5 MB value once made each search return 15 MB."""
    ingest = await client.post("/v1/documents", json={"title": "T", "text": "Some text.", "metadata": metadata})
    assert ingest.status_code == 422 and word in ingest.text
    stored = await client.post("/v1/documents", json={"title": "T", "text": "Some text."})
    patch = await client.patch(f"/v1/documents/{stored.json()['id']}", json={"metadata": metadata})
    assert patch.status_code == 422 and word in patch.text


async def test_unknown_query_parameters_are_refused(client: httpx.AsyncClient) -> None:
    """`?colection=x` would list every collection while the caller thinks it filtered."""
    response = await client.get("/v1/documents", params={"colection": "handbook"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "colection"]
    assert (await client.get("/v1/documents", params={"collection": "handbook"})).status_code == 200
    assert (await client.get("/healthz", params={"full": "true"})).status_code == 200


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/search", "application/json"),
        ("/v1/documents", "application/json"),
        ("/v1/documents", "multipart/form-data; boundary=b"),
        ("/v1/documents/batch", "application/json"),
    ],
)
async def test_a_body_is_not_read_before_the_key_is_checked(
    client_for: ClientFactory, path: str, content_type: str
) -> None:
    """An unauthenticated 24 MB search once got its 401 after doubling the process's memory: the
    key is checked from the headers, and not one byte of the body is read without it."""
    client = await client_for(api_keys="k:ask,ingest")
    pieces_read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pieces_read
        for _ in range(24):
            pieces_read += 1
            yield b" " * 1_000_000

    response = await client.post(path, content=body(), headers={"Content-Type": content_type})
    assert response.status_code == 401 and pieces_read <= 1


async def test_ingests_beyond_the_slots_wait_then_get_a_503_and_none_is_lost(client_for: ClientFactory) -> None:
    """Each ingest may hold 25 MB and a parser: past MAX_CONCURRENT_INGESTS a request waits its
    turn, and past INGEST_SLOT_WAIT_SECONDS it is told to retry, with nothing stored half-way."""
    client = await client_for(max_concurrent_ingests=1, ingest_slot_wait_seconds=0.3)
    release = asyncio.Event()

    async def held_open() -> AsyncIterator[bytes]:
        yield b'{"title": "Held", "text": "Tides follow the moon.'
        await release.wait()
        yield b'"}'

    first = asyncio.create_task(
        client.post("/v1/documents", content=held_open(), headers={"Content-Type": "application/json"})
    )
    await asyncio.sleep(0.1)
    busy = await client.post("/v1/documents/batch", json={"documents": [{"title": "B", "text": "Waves break."}]})
    assert busy.status_code == 503 and "MAX_CONCURRENT_INGESTS" in busy.text
    assert busy.headers["Retry-After"] == "5"
    assert (await client.post("/v1/search", json={"query": "tides"})).status_code == 200  # searches never wait
    release.set()
    assert (await first).status_code == 201
    retried = await client.post("/v1/documents/batch", json={"documents": [{"title": "B", "text": "Waves break."}]})
    assert retried.status_code == 201
    listed = (await client.get("/v1/documents")).json()
    assert sorted(d["title"] for d in listed["documents"]) == ["B", "Held"]


async def test_search_and_ask_bodies_are_bounded_to_what_they_need(client_for: ClientFactory) -> None:
    client = await client_for(api_keys="k:ask,ingest")
    padded = json.dumps({"query": "tides", "filters": {}}) + " " * 70_000
    for path in ("/v1/search", "/v1/ask"):
        response = await client.post(
            path, content=padded, headers={"X-API-Key": "k", "Content-Type": "application/json"}
        )
        assert response.status_code == 413 and "65536" in response.text, path


async def test_a_multipart_body_over_the_limit_is_a_413_as_a_json_one_is(client_for: ClientFactory) -> None:
    client = await client_for(max_request_bytes=200_000)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n\r\n'
        for _ in range(10):
            yield b"word " * 10_000
        yield b"\r\n--b--\r\n"

    response = await client.post(
        "/v1/documents", content=chunked(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413 and "MAX_REQUEST_BYTES" in response.text


async def test_a_body_that_dribbles_forever_meets_its_overall_deadline(client_for: ClientFactory) -> None:
    """A byte well inside every stall timeout never stalls, yet must not hold a connection for
    ever: past REQUEST_BODY_DEADLINE_SECONDS it is a 408 naming that limit."""
    client = await client_for(request_body_timeout_seconds=1.0, request_body_deadline_seconds=1.5)

    async def dribble() -> AsyncIterator[bytes]:
        yield b'{"title": "T", "text": "'
        for _ in range(40):
            await asyncio.sleep(0.2)
            yield b"x"

    response = await client.post("/v1/documents", content=dribble(), headers={"Content-Type": "application/json"})
    assert response.status_code == 408 and "REQUEST_BODY_DEADLINE_SECONDS" in response.text
