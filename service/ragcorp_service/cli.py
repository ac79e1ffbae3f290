"""`ragcorp-service`: serve the API, or manage the database schema.

    ragcorp-service serve [--host H] [--port P] [--migrate] [--reload]
    ragcorp-service db upgrade [REV] | downgrade REV | current | heads
    ragcorp-service import FILE.jsonl [--collection C] [--keep-index]   # a large corpus, fast
    ragcorp-service smoke --url URL [--expect-schema REV]
    ragcorp-service healthcheck          # the image's HEALTHCHECK: GET /healthz on this host

With no DATABASE_URL both start the embedded PostgreSQL under RAGCORP_DATA_DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from ragcorp_service.settings import Settings, SettingsError, load_settings


def _exit_cleanly(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    # uvicorn drains on SIGTERM, then raises the signal again with the handler it found: with the
    # default one the process dies on the spot, skipping the exit hooks that stop the embedded
    # PostgreSQL this process started. Exiting through SystemExit runs them (SIGINT already does).
    signal.signal(signal.SIGTERM, _exit_cleanly)

    from ragcorp_service.app.main import create_app
    from ragcorp_service.db import migrations

    if problem := _port_problem(settings.host, settings.port):
        print(f"ragcorp-service: cannot start: {problem}", file=sys.stderr)
        return 1
    database_url = migrations.resolve_database_url(settings)
    if args.migrate:
        if problem := _database_problem(settings, database_url, schema=False):
            print(f"ragcorp-service: cannot start: {problem}", file=sys.stderr)
            return 1
        migrations.upgrade(migrations.target_for(settings, database_url))
    if problem := _database_problem(settings, database_url, schema=True) or _embedder_problem(settings):
        print(f"ragcorp-service: cannot start: {problem}", file=sys.stderr)
        return 1
    host, port = settings.host, settings.port  # --host/--port were applied (and checked) as settings
    if args.reload:
        # Development (compose.yaml): uvicorn re-imports the app factory in a child process on each
        # change, so the resolved URL (perhaps the embedded server this process runs) goes by env.
        os.environ["DATABASE_URL"] = database_url
        package = str(Path(__file__).resolve().parent)
        factory = "ragcorp_service.app.main:create_app"
        uvicorn.run(factory, host=host, port=port, log_config=None, factory=True, reload=True, reload_dirs=[package])
        return 0
    from ragcorp_service.app.server import server

    app = create_app(settings.model_copy(update={"database_url": database_url}))
    server(app, settings).run()
    return 0


def _port_problem(host: str, port: int) -> str | None:
    """Checked before the database is started or migrated: on a taken port, serve once migrated
    and logged "ready" before failing. (A bind that succeeds here can still lose a race.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"{host}:{port} is taken ({exc.strerror}); serve elsewhere with PORT=<port> or --port"
    return None


def _database_problem(settings: Settings, database_url: str, *, schema: bool) -> str | None:
    """Why serving cannot start, in one line: the database does not answer or refuses us, or (with
    `schema`) its schema is not what this version and embedder need. The app checks the same as it
    starts; checked here first, a user reads this line instead of uvicorn's traceback."""
    import asyncpg

    from ragcorp_service.db.schema_check import SchemaMismatch, verify_database

    async def check() -> None:
        if schema:
            await verify_database(
                database_url,
                embedding_model=settings.resolved_embedding_model,
                embedding_dimensions=settings.resolved_embedding_dimensions,
            )
        else:
            await (await asyncpg.connect(database_url)).close()

    try:
        asyncio.run(check())
    except SchemaMismatch as exc:
        return str(exc)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"cannot use the database at {_where(database_url)}: {' '.join(str(exc).split())}"
    return None


def _embedder_problem(settings: Settings) -> str | None:
    """Why the offline embedder cannot run (its files missing and not exportable here, a file that
    does not load, the PyTorch backend not installed), in one line. Loading it here costs a second
    the app spends again; a user reads this line instead of a traceback from the app's start-up."""
    if settings.provider != "local":
        return None
    from ragcorp_service.providers.embedders import local_embedder

    try:
        local_embedder(settings.resolved_embedding_model, settings.embedder_onnx_dir, threads=1)
    except RuntimeError as exc:
        return " ".join(str(exc).split())
    return None


def _where(database_url: str) -> str:
    """host:port/database of a URL, without its credentials."""
    from urllib.parse import parse_qs, urlparse

    parsed = urlparse(database_url)
    host = parsed.hostname or parse_qs(parsed.query).get("host", ["?"])[0]
    return f"{host}:{parsed.port or 5432}{parsed.path}"


def _healthcheck(settings: Settings, args: argparse.Namespace) -> int:
    """Liveness from inside the container: slim images have no curl, and this knows PORT."""
    url = f"http://127.0.0.1:{settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            healthy = response.status == 200
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    print("healthy" if healthy else f"unhealthy: {url}")
    return 0 if healthy else 1


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from ragcorp_service.db import migrations

    if args.action == "heads":
        print(migrations.head_revision())
        return 0
    target = migrations.target_for(settings)
    if args.action == "current":
        print(asyncio.run(migrations.read_current_revision(target.database_url)) or "base")
        return 0
    if args.action == "upgrade":
        revision = migrations.upgrade(target, args.revision or "head")
    else:
        revision = migrations.downgrade(target, args.revision)
    print(revision or "base")
    return 0


def _smoke(settings: Settings, args: argparse.Namespace) -> int:
    from ragcorp_service.client.smoke import run_smoke_test
    from ragcorp_service.db.migrations import write_termination_message

    key = next((k for k, scopes in settings.api_key_scopes.items() if "ask" in scopes), None)
    result = run_smoke_test(args.url, key, args.expect_schema)
    print(("passed: " if result.passed else "failed: ") + result.detail)
    write_termination_message({"smoke": "passed" if result.passed else "failed", "detail": result.detail})
    return 0 if result.passed else 1


def _import(settings: Settings, args: argparse.Namespace) -> int:
    """A JSON Lines corpus straight into the database (`ingestion/bulk.py`), then what it did."""
    from ragcorp_service.app.provider_selection import build_providers
    from ragcorp_service.db import migrations
    from ragcorp_service.db.pool import create_pool
    from ragcorp_service.ingestion.bulk import ImportLineError, bulk_import, prepared, read_lines
    from ragcorp_service.ingestion.pipeline import Ingestor

    database_url = migrations.resolve_database_url(settings)
    if problem := _database_problem(settings, database_url, schema=True):
        print(f"ragcorp-service: cannot import: {problem}", file=sys.stderr)
        return 1
    embedder = build_providers(settings).embedder

    async def run(lines: BinaryIO) -> str:
        pool = await create_pool(database_url, settings)
        try:
            ingestor = Ingestor(
                pool, embedder, chunk_tokens=settings.chunk_tokens, overlap_tokens=settings.chunk_overlap_tokens
            )
            parsed = read_lines(lines, args.collection, settings.resolved_embedding_dimensions)
            async with pool.acquire() as connection:
                report = await bulk_import(
                    connection, prepared(parsed, ingestor, args.batch), rebuild_index=not args.keep_index
                )
        finally:
            await pool.close()
        return (
            f"imported {report.documents} documents ({report.chunks} chunks) into {args.collection!r}, "
            f"{report.already_stored} already stored; writing {report.seconds_writing:.0f} s, "
            f"vector index {report.seconds_index:.0f} s"
        )

    try:
        with open(args.file, "rb") as lines:  # read a line at a time: a corpus may not fit in memory
            print(asyncio.run(run(lines)))
    except (ImportLineError, OSError) as exc:
        print(f"ragcorp-service: cannot import {args.file}: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragcorp-service", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="bind address (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: PORT or 8000)")
    serve.add_argument("--migrate", action="store_true", help="apply migrations before serving")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development only)")
    health = commands.add_parser("healthcheck", help="exit 0 when GET /healthz on this host's PORT answers 200")
    health.add_argument("--timeout", type=float, default=4.0)
    db = commands.add_parser("db", help="manage the database schema")
    actions = db.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate up (default: to head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = actions.add_parser("downgrade", help="migrate down to REV ('base' empties the schema)")
    downgrade.add_argument("revision")
    actions.add_parser("current", help="print the applied revision")
    actions.add_parser("heads", help="print the newest revision this version knows")
    bulk = commands.add_parser("import", help="import a JSON Lines corpus straight into the database")
    bulk.add_argument("file", help="one document a line: title, text, [metadata], [chunks with embeddings]")
    bulk.add_argument("--collection", default="default")
    bulk.add_argument("--batch", type=int, default=256, help="documents embedded and stored together")
    bulk.add_argument(
        "--keep-index", action="store_true", help="keep the vector index (slower; vector search stays fast meanwhile)"
    )
    smoke = commands.add_parser("smoke", help="smoke-test a running service (health, version, search, ask)")
    smoke.add_argument("--url", required=True)
    smoke.add_argument("--expect-schema", help="fail unless /version reports this schema revision")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if args.command == "serve":
        # The address actually bound is the one the open-mode check (no API_KEYS off loopback) must see.
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = load_settings(serving=args.command == "serve", **overrides)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    from ragcorp_service.embedded_db import EmbeddedPostgresUnavailable
    from ragcorp_service.logs import configure_logging

    configure_logging(settings.log_level)
    if args.command == "smoke":
        return _smoke(settings, args)
    if args.command == "healthcheck":
        return _healthcheck(settings, args)
    try:
        if args.command == "import":
            return _import(settings, args)
        return _serve(settings, args) if args.command == "serve" else _db(settings, args)
    except EmbeddedPostgresUnavailable as exc:  # not installed, or another environment's server
        print(f"ragcorp-service: cannot start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
