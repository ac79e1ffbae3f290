"""Fixtures for the service: real PostgreSQL, the real app, the real embedder."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from ragcorp_service.app.main import create_app
from ragcorp_service.db import migrations
from ragcorp_service.settings import Settings
from tests.support.postgres import PostgresForTests, start
from tests.support.service_app import ClientFactory, make_settings

TEMPLATE = "ragcorp_template"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresForTests]:
    # Not pytest's tmp_path: the server runs as another user when tests run as root,
    # and that user must be able to reach the directory.
    with tempfile.TemporaryDirectory(prefix="ragcorp-pg-") as directory:
        server = start(Path(directory))
        yield server
        server.server.cleanup()


@pytest.fixture(scope="session")
def template_database(postgres: PostgresForTests) -> str:
    postgres.sql(f"CREATE DATABASE {TEMPLATE}")
    migrations.upgrade(migrations.target_for(make_settings(postgres.url(TEMPLATE))))
    return TEMPLATE


@pytest.fixture
def database_url(postgres: PostgresForTests, template_database: str) -> Iterator[str]:
    """A migrated, empty database of this test's own."""
    name = postgres.create_database(template=template_database)
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def empty_database_url(postgres: PostgresForTests) -> Iterator[str]:
    """A database with no schema at all."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=120):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def client_for(database_url: str) -> AsyncIterator[ClientFactory]:
    """Build a client on this test's database with other settings (limits, providers)."""
    stack: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def factory(**overrides: Any) -> httpx.AsyncClient:
        application = create_app(make_settings(overrides.pop("database_url", database_url), **overrides))
        manager = LifespanManager(application, startup_timeout=120)
        await manager.__aenter__()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver")
        stack.append((manager, http))
        return http

    yield factory
    for manager, http in reversed(stack):
        await http.aclose()
        await manager.__aexit__(None, None, None)
