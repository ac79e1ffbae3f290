"""`ragcorp-service import`: a JSON Lines corpus into the database, searchable as an ingest leaves it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from ragcorp_service.cli import main
from ragcorp_service.local_models import DIMENSIONS
from ragcorp_service.retrieval.keyword import KeywordRanking, full_keyword_ranking, keyword_ranking
from ragcorp_service.retrieval.request import SearchRequest
from tests.support import postings_corpus as corpus

LINES = [
    {"title": "Tides", "text": "The moon raises two tides a day. Spring tides come when the sun and moon line up."},
    {
        "title": "Volcanoes",
        "text": "Basaltic lava flows far; rhyolitic magma erupts explosively.",
        "metadata": {"k": 1},
    },
    {
        "title": "Embedded elsewhere",
        "text": "Glaciers carve U-shaped valleys. Moraines mark where they stopped.",
        "chunks": [
            {"text": "Glaciers carve U-shaped valleys.", "embedding": list(np.full(DIMENSIONS, 0.05))},
            {"text": "Moraines mark where they stopped.", "embedding": list(np.full(DIMENSIONS, -0.05))},
        ],
    },
]


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


async def state(database_url: str) -> dict[str, object]:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            """
            SELECT (SELECT count(*) FROM documents WHERE collection = 'earth') AS documents,
                   (SELECT count(*) FROM chunks WHERE collection = 'earth') AS chunks,
                   (SELECT count(*) FROM chunk_terms) AS tail,
                   EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'chunks_embedding_hnsw_idx') AS vector_index
            """
        )
        return {**dict(row), "statistics_agree": await corpus.statistics_agree(connection)}
    finally:
        await connection.close()


async def both_rankings(database_url: str, request: SearchRequest) -> tuple[KeywordRanking, KeywordRanking]:
    connection = await asyncpg.connect(database_url)
    try:
        return (
            await keyword_ranking(connection, request, request.top_k),
            await full_keyword_ranking(connection, request, request.top_k),
        )
    finally:
        await connection.close()


def run_import(database_url: str, path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    return main(["import", str(path), "--collection", "earth", *extra])


def test_an_import_is_searchable_merged_and_indexed_and_a_rerun_stores_nothing_twice(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "corpus.jsonl", LINES)
    assert run_import(database_url, path, monkeypatch) == 0
    assert "imported 3 documents (4 chunks) into 'earth', 0 already stored" in capsys.readouterr().out
    assert asyncio.run(state(database_url)) == {
        "documents": 3,
        "chunks": 4,
        "tail": 0,  # every posting merged into blocks
        "vector_index": True,  # dropped for the import, built again after it
        "statistics_agree": True,
    }
    request = SearchRequest(query="where glaciers stopped", top_k=2, mode="keyword", collection="earth")
    found, full = asyncio.run(both_rankings(database_url, request))
    assert found.chunks[0].text == "Moraines mark where they stopped."
    assert [c.chunk_id for c in found.chunks] == [c.chunk_id for c in full.chunks]
    assert run_import(database_url, path, monkeypatch) == 0
    assert "imported 0 documents (0 chunks) into 'earth', 3 already stored" in capsys.readouterr().out


def test_the_same_document_twice_in_a_file_is_stored_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # One document a batch: the two copies are stored by the same transaction, from different batches
    path = write_lines(tmp_path / "twice.jsonl", [LINES[0], LINES[1], LINES[0]])
    assert run_import(database_url, path, monkeypatch, "--batch", "1") == 0
    assert "imported 2 documents (2 chunks) into 'earth', 1 already stored" in capsys.readouterr().out
    assert asyncio.run(state(database_url)) == {
        "documents": 2,
        "chunks": 2,
        "tail": 0,
        "vector_index": True,
        "statistics_agree": True,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: Expecting value"),
        ({"title": "no text"}, 'line 2: each line must be a JSON object with a "text" string'),
        (
            {"text": "short vector", "chunks": [{"text": "short vector", "embedding": [0.1, 0.2]}]},
            f"line 2: an embedding has 2 dimensions; the database's model has {DIMENSIONS}",
        ),
    ],
    ids=["not-json", "no-text", "wrong-dimensions"],
)
def test_a_bad_line_is_named_and_the_database_keeps_its_index(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    line: object,
    message: str,
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(LINES[0]) + "\n" + (line if isinstance(line, str) else json.dumps(line)) + "\n")
    assert run_import(database_url, path, monkeypatch) == 1
    assert message in capsys.readouterr().err
    assert asyncio.run(state(database_url))["vector_index"] is True


def unreadable(tmp_path: Path, kind: str) -> Path:
    """A path `ragcorp-service import` cannot read as UTF-8 text, of the `kind` asked for."""
    if kind == "missing":
        return tmp_path / "missing.jsonl"
    if kind == "a-directory":
        return tmp_path
    path = tmp_path / "latin-1.jsonl"
    path.write_bytes(json.dumps(LINES[0]).encode() + b'\n{"title": "Caf\xe9", "text": "in Latin-1"}\n')
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [("missing", "No such file or directory"), ("a-directory", "Is a directory"), ("not-utf-8", "line 2: not UTF-8")],
)
def test_a_file_that_cannot_be_read_is_named_and_the_database_keeps_its_index(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    message: str,
) -> None:
    path = unreadable(tmp_path, kind)
    assert run_import(database_url, path, monkeypatch) == 1
    error = capsys.readouterr().err
    assert f"cannot import {path}" in error and message in error
    assert asyncio.run(state(database_url))["vector_index"] is True
