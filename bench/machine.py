"""What the figures were measured on: cores, memory, and the versions that matter."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

import asyncpg


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def describe() -> dict[str, Any]:
    total_kib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "sentence_transformers": _version("sentence-transformers"),
        "ragcorp": _version("ragcorp"),
    }


async def describe_database(database_url: str) -> dict[str, Any]:
    connection = await asyncpg.connect(database_url)
    try:
        postgres = await connection.fetchval("SHOW server_version")
        pgvector = await connection.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        shared_buffers = await connection.fetchval("SHOW shared_buffers")
    finally:
        await connection.close()
    return {"postgresql": postgres, "pgvector": pgvector, "shared_buffers": shared_buffers}
