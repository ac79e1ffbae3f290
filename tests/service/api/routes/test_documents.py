"""Ingesting, deduplicating, listing, reading and deleting documents."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.corpus import DOCUMENTS, ingest_all
from tests.support.pdfs import make_pdf
from tests.support.service_app import ClientFactory


async def test_json_ingest_stores_the_document_and_its_chunks(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/documents", json={**DOCUMENTS[0], "source": "https://example.org/p"})
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["created"] is True
    assert document["chunk_count"] >= 1
    detail = (await client.get(f"/v1/documents/{document['id']}", params={"include_chunks": True})).json()
    assert detail["title"] == "Photosynthesis"
    assert detail["source"] == "https://example.org/p"
    assert detail["metadata"] == {"topic": "biology", "year": 2020}
    assert "Calvin cycle" in " ".join(chunk["text"] for chunk in detail["chunks"])


async def test_identical_content_is_stored_once_per_collection(client: httpx.AsyncClient) -> None:
    first = (await client.post("/v1/documents", json=DOCUMENTS[1])).json()
    again = await client.post("/v1/documents", json={**DOCUMENTS[1], "text": DOCUMENTS[1]["text"] + "\r\n"})
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["created"] is False
    elsewhere = await client.post("/v1/documents", json={**DOCUMENTS[1], "collection": "other"})
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first["id"]
    listing = (await client.get("/v1/documents")).json()
    assert listing["total"] == 2


async def test_a_batch_with_a_repeated_document_stores_it_once(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/documents/batch", json={"documents": [DOCUMENTS[2], DOCUMENTS[2]]})
    first, second = response.json()["documents"]
    assert first["id"] == second["id"]
    assert [first["created"], second["created"]] == [True, False]


async def test_file_uploads_of_each_supported_type(client: httpx.AsyncClient) -> None:
    files = [
        ("files", ("guide.md", b"# Tides\n\nThe moon's gravity raises the ocean tides twice a day.")),
        ("files", ("page.html", b"<title>Glaciers</title><p>Glaciers carve U-shaped valleys.</p>")),
        ("files", ("paper.pdf", make_pdf("Coral reefs are built by colonies of polyps.", title="Reefs"))),
        ("files", ("notes.txt", b"Sound travels faster in water than in air.")),
    ]
    response = await client.post("/v1/documents", files=files, data={"collection": "uploads"})
    assert response.status_code == 201, response.text
    stored = response.json()["documents"]
    assert [d["title"] for d in stored] == ["Tides", "Glaciers", "Reefs", "notes"]
    assert {d["collection"] for d in stored} == {"uploads"}
    assert [d["metadata"]["media_type"] for d in stored] == [
        "text/markdown",
        "text/html",
        "application/pdf",
        "text/plain",
    ]


async def test_listing_pages_through_documents(client: httpx.AsyncClient) -> None:
    await ingest_all(client)
    page = (await client.get("/v1/documents", params={"limit": 2})).json()
    rest = (await client.get("/v1/documents", params={"limit": 2, "offset": 2})).json()
    assert page["total"] == rest["total"] == 3
    assert len(page["documents"]) == 2 and len(rest["documents"]) == 1
    titles = {d["title"] for d in page["documents"] + rest["documents"]}
    assert titles == {d["title"] for d in DOCUMENTS}


async def test_delete_removes_the_document_and_its_chunks_from_search(client: httpx.AsyncClient) -> None:
    ids = await ingest_all(client)
    assert (await client.delete(f"/v1/documents/{ids['Volcanoes']}")).status_code == 204
    assert (await client.get(f"/v1/documents/{ids['Volcanoes']}")).status_code == 404
    for mode in ("keyword", "vector"):
        hits = (await client.post("/v1/search", json={"query": "lava volcano", "mode": mode, "top_k": 10})).json()
        assert ids["Volcanoes"] not in {h["document_id"] for h in hits["results"]}
    assert (await client.delete(f"/v1/documents/{ids['Volcanoes']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"title": "t", "text": "x", "colour": "red"}, "extra"),
        ({"title": "t", "text": "   "}, "text"),
        ({"title": "t"}, "text"),
        ({"title": "t", "text": "x", "collection": "has space"}, "collection"),
        ({"title": "t", "text": "x", "metadata": {"nested": {"a": 1}}}, "metadata"),
        ({"title": "t", "text": "nul \u0000 byte"}, "NUL"),
    ],
)
async def test_invalid_documents_are_rejected_with_the_field_named(
    client: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    response = await client.post("/v1/documents", json=body)
    assert response.status_code == 422
    assert fragment in response.text
    assert (await client.get("/v1/documents")).json()["total"] == 0


@pytest.mark.parametrize(
    ("fields", "json_fields"),
    [
        ({"collection": "has space"}, {"collection": "has space"}),
        ({"colection": "papers"}, {"colection": "papers"}),
        ({"metadata": '{"nested": {"a": 1}}'}, {"metadata": {"nested": {"a": 1}}}),
    ],
    ids=["bad-collection", "unknown-field", "nested-metadata"],
)
async def test_a_multipart_upload_is_refused_in_the_same_shape_as_json(
    client: httpx.AsyncClient, fields: dict[str, str], json_fields: dict[str, object]
) -> None:
    upload = await client.post("/v1/documents", files={"files": ("a.txt", b"Tides rise.")}, data=fields)
    as_json = await client.post("/v1/documents", json={"title": "t", "text": "Tides rise.", **json_fields})
    assert upload.status_code == as_json.status_code == 422
    shape = [(e["type"], e["loc"]) for e in upload.json()["detail"]]
    assert shape == [(e["type"], e["loc"]) for e in as_json.json()["detail"]]
    assert "pydantic" not in upload.text
    assert (await client.get("/v1/documents")).json()["total"] == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/search", {"query": "tides", "top_k": "5"}),
        ("/v1/ask", {"question": "tides?", "stream": "true"}),
        ("/v1/documents", {"title": 5, "text": "Tides rise."}),
    ],
)
async def test_numbers_booleans_and_strings_are_not_coerced(
    client: httpx.AsyncClient, path: str, body: dict[str, object]
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] in ("int_type", "bool_type", "string_type")


async def test_unsupported_uploads_and_media_types_are_refused(client: httpx.AsyncClient) -> None:
    await client.post("/v1/documents", json=DOCUMENTS[0])
    upload = await client.post("/v1/documents", files=[("files", ("photo.png", b"\x89PNG\r\n"))])
    assert upload.status_code == 415 and "unsupported file type .png" in upload.json()["detail"]
    raw = await client.post("/v1/documents", content=b"hello", headers={"content-type": "text/plain"})
    assert raw.status_code == 415
    assert (await client.get("/v1/documents")).json()["total"] == 1  # nothing stored was touched


async def test_limits_reject_oversize_input_with_the_limit_named(client_for: ClientFactory) -> None:
    client = await client_for(max_request_bytes=4096, max_document_chars=100, max_batch_documents=2)
    too_big = await client.post("/v1/documents", json={"title": "t", "text": "x" * 5000})
    assert too_big.status_code == 413 and "MAX_REQUEST_BYTES" in too_big.json()["detail"]
    too_long = await client.post("/v1/documents", json={"title": "t", "text": "y" * 101})
    assert too_long.status_code == 413 and "MAX_DOCUMENT_CHARS" in too_long.json()["detail"]

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for part in (b'{"title": "t", "text": "', b"z" * 5000, b'"}'):
            yield part

    chunked = await client.post("/v1/documents", content=streamed(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    batch = await client.post("/v1/documents/batch", json={"documents": DOCUMENTS})
    assert batch.status_code == 413 and "MAX_BATCH_DOCUMENTS" in batch.json()["detail"]
    assert (await client.get("/v1/documents")).json()["total"] == 0


async def test_unknown_document_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/documents/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert (await client.get("/v1/documents/not-a-uuid")).status_code == 422


async def _keyword(client: httpx.AsyncClient, query: str, **options: object) -> list[tuple[str, float]]:
    body = {"query": query, "mode": "keyword", "top_k": 10, **options}
    response = await client.post("/v1/search", json=body)
    return [(hit["title"], round(hit["score"], 6)) for hit in response.json()["results"]]


async def test_patch_replaces_metadata_and_the_next_filtered_search_follows(client: httpx.AsyncClient) -> None:
    ids = await ingest_all(client)
    patched = await client.patch(f"/v1/documents/{ids['Volcanoes']}", json={"metadata": {"topic": "hazards"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"] == {"topic": "hazards"} and patched.json()["title"] == "Volcanoes"
    assert await _keyword(client, "lava", filters={"topic": "geology"}) == []
    assert [title for title, _ in await _keyword(client, "lava", filters={"topic": "hazards"})] == ["Volcanoes"]


async def test_patching_the_title_indexes_the_document_as_if_ingested_with_it(client: httpx.AsyncClient) -> None:
    """The new title's words find it, and it ranks and scores as the same text ingested under that title."""
    ids = await ingest_all(client)
    before = (await client.get(f"/v1/documents/{ids['Volcanoes']}", params={"include_chunks": "true"})).json()
    patched = await client.patch(f"/v1/documents/{ids['Volcanoes']}", json={"title": "Eruptions of Etna"})
    assert patched.status_code == 200 and patched.json()["title"] == "Eruptions of Etna"
    after = (await client.get(f"/v1/documents/{ids['Volcanoes']}", params={"include_chunks": "true"})).json()
    assert [c["id"] for c in after["chunks"]] == [c["id"] for c in before["chunks"]]  # citations still resolve
    assert patched.json()["chunk_count"] == 1
    assert [title for title, _ in await _keyword(client, "Etna")] == ["Eruptions of Etna"]

    fresh = await client.post("/v1/documents", json={**DOCUMENTS[1], "title": "Eruptions of Etna", "collection": "x"})
    assert fresh.status_code == 201
    for query in ("Etna", "volcano eruptions", "lava"):
        assert await _keyword(client, query, collection="default") == await _keyword(client, query, collection="x")
    vector = {"query": "Etna eruptions", "mode": "vector", "top_k": 1}
    by_patch = (await client.post("/v1/search", json={**vector, "collection": "default"})).json()["results"][0]
    by_ingest = (await client.post("/v1/search", json={**vector, "collection": "x"})).json()["results"][0]
    assert by_patch["document_id"] == ids["Volcanoes"]
    assert by_patch["score"] == pytest.approx(by_ingest["score"], abs=1e-5)


async def test_patch_refuses_empty_bodies_and_unknown_documents(client: httpx.AsyncClient) -> None:
    ids = await ingest_all(client)
    assert (await client.patch(f"/v1/documents/{ids['Volcanoes']}", json={})).status_code == 422
    assert (await client.patch(f"/v1/documents/{ids['Volcanoes']}", json={"text": "new"})).status_code == 422
    missing = await client.patch("/v1/documents/00000000-0000-0000-0000-000000000000", json={"title": "x"})
    assert missing.status_code == 404
    assert (await client.get(f"/v1/documents/{ids['Volcanoes']}")).json()["title"] == "Volcanoes"
