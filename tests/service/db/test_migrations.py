"""Migrations go up and down without losing documents, and never run twice at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from ragcorp_service.db import migrations
from ragcorp_service.db.schema_check import SchemaMismatch, check_schema
from tests.service.conftest import make_settings
from tests.service.corpus import DOCUMENTS, ingest_all
from tests.service.postgres import PostgresForTests


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


async def test_service_refuses_an_unmigrated_database(empty_database_url: str) -> None:
    connection = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(SchemaMismatch, match="db upgrade"):
            await check_schema(connection, embedding_model="all-MiniLM-L6-v2:onnx-int8", embedding_dimensions=384)
    finally:
        await connection.close()


async def test_service_refuses_a_database_built_for_another_embedder(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(SchemaMismatch, match=r"holds all-MiniLM-L6-v2:onnx-int8 embeddings \(384 dimensions\)"):
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
            await check_schema(connection, embedding_model="all-MiniLM-L6-v2:onnx-int8", embedding_dimensions=384)
    finally:
        await connection.close()


def test_template_database_is_reused_not_remigrated(postgres: PostgresForTests, template_database: str) -> None:
    revision = asyncio.run(migrations.read_current_revision(postgres.url(template_database)))
    assert revision == migrations.head_revision() == "0004"
