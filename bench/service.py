"""The system under test: embedded PostgreSQL (kept under bench/.data between runs, so the
SciFact corpus is ingested once) and the service in its own process, as it runs in production."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from ragcorp_service.embedded_db import start_embedded_postgres
from ragcorp_service.retrieval.block_cache import BlockCache
from ragcorp_service.retrieval.cache_warming import Warmed, warm_block_cache
from ragcorp_service.settings import Settings

DATA = Path(__file__).resolve().parent / ".data"
DATABASE = "ragcorp_bench"


def with_database(url: str, name: str) -> str:
    """The same server, another database (the embedded server's URL names a socket in its query)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


# Sized as a production server would be for a million chunks: their HNSW graph and postings
# indexes (about 10 GB) do not fit PostgreSQL's default 128 MB of buffers, and every insert
# and lookup would go to the OS cache instead. (`make run`'s embedded server sizes its buffers to the
# machine, which is these 4 GB on the bench's machine; the bench asks for them wherever it runs.)
SERVER_SETTINGS = MappingProxyType({"shared_buffers": "4GB", "max_wal_size": "8GB"})


def database_url() -> str:
    """BENCH_DATABASE_URL when given (an external server), else the embedded one with SERVER_SETTINGS."""
    if url := os.environ.get("BENCH_DATABASE_URL"):
        return url
    url = start_embedded_postgres(DATA / "postgres", SERVER_SETTINGS["shared_buffers"], SERVER_SETTINGS)
    return with_database(url, DATABASE)


def for_embedding_model(url: str, model: str) -> str:
    """A database per embedding model: a database holds one model's vectors (the service refuses others)."""
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")
    return with_database(url, f"{database_name(url)}_{slug}")


async def ensure_database(url: str, template: str | None = None) -> None:
    """Create the database unless it exists (as a copy of `template` when given)."""
    connection = await asyncpg.connect(with_database(url, "postgres"))
    try:
        name = database_name(url)
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            copy = f' TEMPLATE "{template}"' if template else ""
            await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(database_url: str, **environment: str) -> Iterator[str]:
    """`ragcorp-service serve --migrate` in a child process; yields its base URL."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("API_KEYS", "GOOGLE_API_KEY")},
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "RATE_LIMIT_RPS": "1000000",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MAX_SIZE": "20",
        **environment,
    }
    command = [str(Path(sys.executable).with_name("ragcorp-service")), "serve", "--migrate"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start within 300 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


async def service_block_cache(database_url: str) -> tuple[BlockCache, Warmed]:
    """The keyword block cache a service replica has by default (`KEYWORD_CACHE_MB`), warmed as a
    replica warms it at start: code that calls the retrieval functions directly measures what the
    service runs."""
    cache = BlockCache(int(Settings.model_fields["keyword_cache_mb"].default) * 2**20)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        return cache, await warm_block_cache(pool, cache)
    finally:
        await pool.close()
