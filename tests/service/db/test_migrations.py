"""Migrations go up and down without losing documents, and never run twice at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from ragcorp_service.db import migrations
from ragcorp_service.db.schema_check import SchemaMismatch, check_schema
from ragcorp_service.ingestion.postings import merge
from ragcorp_service.ingestion.store import delete_document
from ragcorp_service.local_models import DEFAULT
from tests.support import postings_corpus
from tests.support.corpus import DOCUMENTS, ingest_all
from tests.support.postgres import PostgresForTests
from tests.support.service_app import make_settings

ROOT = Path(__file__).resolve().parents[3]
EMPTY_BTREE = 8192  # an index built over no rows: its metapage


def embedding_config(url: str) -> dict[str, object]:
    async def read() -> dict[str, object]:
        connection = await asyncpg.connect(url)
        try:
            return dict(await connection.fetchrow("SELECT model, dimensions FROM embedding_config"))
        finally:
            await connection.close()

    return asyncio.run(read())


def tables(url: str) -> set[str]:
    async def read() -> set[str]:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {row["tablename"] for row in rows}
        finally:
            await connection.close()

    return asyncio.run(read())


def test_round_trip_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    target = migrations.target_for(make_settings(empty_database_url))
    assert migrations.upgrade(target) == migrations.head_revision()
    assert {"documents", "chunks", "embedding_config", "term_stats", "corpus_stats", "chunk_terms"} <= tables(
        empty_database_url
    )
    assert migrations.downgrade(target, "base") is None
    assert tables(empty_database_url) == {"alembic_version"}
    assert migrations.upgrade(target) == migrations.head_revision()


def test_concurrent_upgrades_wait_for_each_other(empty_database_url: str) -> None:
    """Three `db upgrade` processes at once, as two Jobs and a developer might run them."""
    env = {**os.environ, "DATABASE_URL": empty_database_url, "LOG_LEVEL": "WARNING"}
    env.pop("GOOGLE_API_KEY", None)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "ragcorp_service.cli", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], [err[-500:] for _, err in outcomes]
    assert [out.strip() for out, _ in outcomes] == [migrations.head_revision()] * 3
    assert asyncio.run(migrations.read_current_revision(empty_database_url)) == migrations.head_revision()


def test_termination_message_is_written_only_where_kubernetes_made_the_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "termination-log"
    migrations.write_termination_message({"schemaRevision": "0002"}, path)
    assert not path.exists()
    path.touch()
    migrations.write_termination_message({"schemaRevision": "0002"}, path)
    assert path.read_text() == '{"schemaRevision": "0002"}\n'


async def test_downgrade_keeps_documents_and_upgrade_rebuilds_keyword_statistics(
    client_for: object, database_url: str
) -> None:
    client = await client_for()  # type: ignore[operator]
    ids = await ingest_all(client)
    before = (await client.post("/v1/search", json={"query": "lava", "mode": "keyword"})).json()["results"]
    target = migrations.target_for(make_settings(database_url))
    await asyncio.to_thread(migrations.downgrade, target, "0001")
    await asyncio.to_thread(migrations.upgrade, target)
    after = (await client.post("/v1/search", json={"query": "lava", "mode": "keyword"})).json()["results"]
    assert (await client.get("/v1/documents")).json()["total"] == len(DOCUMENTS)
    assert after[0]["document_id"] == ids["Volcanoes"]
    assert [round(h["score"], 6) for h in after] == [round(h["score"], 6) for h in before]


async def test_posting_blocks_go_back_to_rows_and_return_with_their_tail_and_tombstones(database_url: str) -> None:
    """At 0005 postings are in blocks, a tail and tombstones; down to 0004 they are one row each, the
    deleted chunks' gone; up again they are blocks, the tail merged and the tombstones applied, and
    the emptied tail's indexes shrunk back to nothing (0007)."""
    rng = np.random.default_rng(31)
    stored = await postings_corpus.store(database_url, postings_corpus.documents(rng, 40, (20, 80)))
    connection = await asyncpg.connect(database_url)
    try:
        await merge(connection)
        await postings_corpus.store(database_url, postings_corpus.documents(rng, 5, (20, 80)))  # the tail
        for record, _ in stored[:6]:
            await delete_document(connection, record.id)  # tombstones
        assert await connection.fetchval("SELECT count(*) FROM posting_tombstones") > 0
        assert await connection.fetchval("SELECT count(*) FROM chunk_terms") > 0
        target = migrations.target_for(make_settings(database_url))
        await asyncio.to_thread(migrations.downgrade, target, "0004")
        assert await postings_corpus.postings_disagreeing_with_chunks(connection, "chunk_terms") == 0
        stale = (
            "SELECT count(*) FROM chunk_terms, corpus_stats WHERE weight <> bm25_weight(tf, chunk_len, reference_avgdl)"
        )
        assert await connection.fetchval(stale) == 0
        indexes = "SELECT sum(pg_relation_size(indexrelid)) FROM pg_index WHERE indrelid = 'chunk_terms'::regclass"
        as_rows = await connection.fetchval(indexes)
        await asyncio.to_thread(migrations.upgrade, target)
        assert await postings_corpus.postings_disagreeing_with_chunks(connection) == 0
        assert await connection.fetchval(indexes) == EMPTY_BTREE * 2 < as_rows
        left = "SELECT (SELECT count(*) FROM chunk_terms) + (SELECT count(*) FROM posting_tombstones)"
        assert await connection.fetchval(left) == 0
        assert await postings_corpus.statistics_agree(connection)
    finally:
        await connection.close()


async def test_embeddings_go_to_half_precision_and_back_and_vector_search_finds_the_same(
    client_for: object, database_url: str
) -> None:
    """0006 stores embeddings as halfvec; down to 0005 they are vectors holding the same values (a
    float16 is exactly a float32), up again halfvec; vector search ranks the same documents throughout."""
    client = await client_for()  # type: ignore[operator]
    await ingest_all(client)

    async def searched() -> list[str]:
        body = {"query": "mountain that explodes", "mode": "vector", "top_k": 5}
        return [hit["document_id"] for hit in (await client.post("/v1/search", json=body)).json()["results"]]

    column = (
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
    )
    vectors = "SELECT id, embedding::real[] AS values FROM chunks ORDER BY id"
    before = await searched()
    target = migrations.target_for(make_settings(database_url))
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval(column) == "halfvec(384)"
        half = await connection.fetch(vectors)
        await asyncio.to_thread(migrations.downgrade, target, "0005")
        assert await connection.fetchval(column) == "vector(384)"
        assert await connection.fetch(vectors) == half
        assert await searched() == before
        await asyncio.to_thread(migrations.upgrade, target)
        assert await connection.fetchval(column) == "halfvec(384)"
        assert await connection.fetch(vectors) == half
    finally:
        await connection.close()
    assert await searched() == before


async def test_service_refuses_an_unmigrated_database(empty_database_url: str) -> None:
    connection = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(SchemaMismatch, match="db upgrade"):
            await check_schema(connection, embedding_model=DEFAULT.name, embedding_dimensions=384)
    finally:
        await connection.close()


async def test_service_refuses_a_database_built_for_another_embedder(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(SchemaMismatch, match=rf"holds {DEFAULT.name} embeddings \(384 dimensions\)"):
            await check_schema(connection, embedding_model="gemini-embedding-001", embedding_dimensions=768)
    finally:
        await connection.close()


async def test_a_database_built_on_pytorch_is_not_searched_with_onnx_vectors(empty_database_url: str) -> None:
    """Same model, same dimensions, another backend: refused, with the setting that serves it named."""
    target = migrations.target_for(make_settings(empty_database_url, embedding_model="all-MiniLM-L6-v2"))
    await asyncio.to_thread(migrations.upgrade, target)
    connection = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(
            SchemaMismatch, match=r"holds all-MiniLM-L6-v2 embeddings.*EMBEDDING_MODEL=all-MiniLM-L6-v2,"
        ):
            await check_schema(connection, embedding_model=DEFAULT.name, embedding_dimensions=384)
    finally:
        await connection.close()


def test_template_database_is_reused_not_remigrated(postgres: PostgresForTests, template_database: str) -> None:
    revision = asyncio.run(migrations.read_current_revision(postgres.url(template_database)))
    assert revision == migrations.head_revision() == "0007"


def test_the_operator_s_migration_job_runs_with_only_the_database_secret(empty_database_url: str) -> None:
    """The Job as the operator renders it for a Gemini deployment with API keys, run for real with
    the environment a kubelet would give it: no Gemini key, no API keys, HOST=0.0.0.0."""
    import yaml

    from ragcorp_operator.plan import render_resource
    from ragcorp_service.settings import GEMINI_EMBEDDING_DIMENSIONS

    resource = yaml.safe_load((ROOT / "crds/examples/production.yaml").read_text())
    manifests = {m["kind"] + "/" + m["metadata"]["name"]: m for m in render_resource(resource)}
    secret_values = {"DATABASE_URL": empty_database_url, "GOOGLE_API_KEY": "AIza-unused", "API_KEYS": "k:ask"}
    job = manifests["Job/ragcorp-migrate-1"]["spec"]["template"]["spec"]["containers"][0]
    env = {
        # The ConfigMap the Job's Pod reads, by the name its envFrom gives.
        **manifests["ConfigMap/" + job["envFrom"][0]["configMapRef"]["name"]]["data"],
        # Secrets resolved as the kubelet resolves them; plain values (spec.env) as they are.
        **{
            e["name"]: e["value"] if "value" in e else secret_values[e["valueFrom"]["secretKeyRef"]["key"]]
            for e in job["env"]
        },
    }
    assert set(env) >= {"HOST", "EMBEDDING_PROVIDER"} and "GOOGLE_API_KEY" not in env and "API_KEYS" not in env
    command = [sys.executable, "-m", "ragcorp_service.cli", *job["command"][1:]]
    run = subprocess.run(command, env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-800:]
    assert run.stdout.strip() == migrations.head_revision()
    assert embedding_config(empty_database_url)["dimensions"] == GEMINI_EMBEDDING_DIMENSIONS
