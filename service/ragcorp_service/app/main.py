"""The application factory.

`create_app(settings)` wires everything from one Settings object; the lifespan
checks the database schema and the embedder before the first request, so a
misconfigured Pod never turns ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import asyncpg
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from opentelemetry.sdk.trace.export import SpanExporter

from ragcorp_service.api.auth import AUTH_FAILURES_BURST, AUTH_FAILURES_PER_SECOND
from ragcorp_service.api.deps import refuse_unknown_query
from ragcorp_service.api.errors import install_error_handlers
from ragcorp_service.api.routes import ask, documents, health, search, version
from ragcorp_service.api.routes import metrics as metrics_route
from ragcorp_service.api.service_metrics import ServiceMetrics
from ragcorp_service.api.state import AppState, Providers
from ragcorp_service.app.body_limit import BodyLimitMiddleware
from ragcorp_service.app.draining import Drain, DrainMiddleware
from ragcorp_service.app.instrumented import InstrumentedEmbedder, InstrumentedGenerator
from ragcorp_service.app.observability import RequestContextMiddleware
from ragcorp_service.app.provider_selection import build_providers
from ragcorp_service.app.tracing import build_tracer_provider, instrument, tracer_for
from ragcorp_service.db.pool import create_pool
from ragcorp_service.db.schema_check import verify_database
from ragcorp_service.ingestion.pipeline import Ingestor
from ragcorp_service.retrieval.block_cache import BlockCache
from ragcorp_service.retrieval.cache_warming import warm_block_cache
from ragcorp_service.retrieval.search import ReadPool, SearchTuning
from ragcorp_service.security.api_keys import KeyRing
from ragcorp_service.security.rate_limit import TokenBuckets
from ragcorp_service.services.answering import AnsweringService
from ragcorp_service.services.documents import DocumentService
from ragcorp_service.services.retrieval import RetrievalService
from ragcorp_service.settings import Settings, load_settings

log = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    """The service cannot start as configured; the message says how to fix it."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not settings.database_url:
        raise ConfigurationError("no database: set DATABASE_URL (the CLI starts an embedded one when unset)")
    revision = await verify_database(
        settings.database_url,
        embedding_model=settings.resolved_embedding_model,
        embedding_dimensions=settings.resolved_embedding_dimensions,
    )
    providers = await anyio.to_thread.run_sync(build_providers, settings)
    if providers.embedder.dimensions != settings.resolved_embedding_dimensions:
        raise ConfigurationError(
            f"{providers.embedder.model} produces {providers.embedder.dimensions} dimensions, "
            f"not {settings.resolved_embedding_dimensions}"
        )
    metrics: ServiceMetrics = app.state.metrics
    tracer = tracer_for(app.state.tracer_provider, settings.ragcorp_version)
    providers = Providers(
        embedder=InstrumentedEmbedder(providers.embedder, metrics, tracer),
        generator=InstrumentedGenerator(providers.generator, metrics, tracer),
    )
    pool = await create_pool(settings.database_url, settings)
    read_pool = await create_pool(settings.database_read_url, settings) if settings.database_read_url else pool
    metrics.watch_pool(lambda: (pool.get_size(), pool.get_idle_size()))
    keys = KeyRing(settings.api_key_grants)
    if keys.open:
        log.warning("API_KEYS is unset: serving without authentication", extra={"host": settings.host})
    reader = ReadPool(read_pool, BlockCache(settings.keyword_cache_mb * 2**20) if settings.keyword_cache_mb else None)
    warming = asyncio.create_task(_warm_block_cache(reader)) if reader.block_cache is not None else None
    ingestor = Ingestor(
        pool,
        providers.embedder,
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
        merge_at=settings.postings_merge_at,
    )
    retrieval = RetrievalService(reader, providers.embedder, tracer, settings.max_top_k, SearchTuning())
    app.state.ragcorp = AppState(
        settings=settings,
        pool=pool,
        reader=reader,
        providers=providers,
        documents=DocumentService(pool, ingestor),
        retrieval=retrieval,
        answering=AnsweringService(retrieval, providers.generator),
        keys=keys,
        rate_limits=TokenBuckets(settings.rate_limit_rps, settings.effective_burst),
        auth_failures=TokenBuckets(AUTH_FAILURES_PER_SECOND, AUTH_FAILURES_BURST),
        ingest_slots=asyncio.Semaphore(settings.max_concurrent_ingests),
        metrics=metrics,
        tracer=tracer,
        cache_warming=warming,
    )
    log.info(
        "service ready",
        extra={
            "schema_revision": revision,
            "embedding_model": providers.embedder.model,
            "generator": providers.generator.name,
        },
    )
    try:
        yield
    finally:
        if warming is not None:  # stopped before the pools close under it
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)
        if read_pool is not pool:
            await read_pool.close()
        await pool.close()
        if app.state.tracer_provider is not None:
            app.state.tracer_provider.shutdown()


async def _warm_block_cache(reader: ReadPool) -> None:
    """Fill the keyword block cache with the most common words' lists while the replica starts
    serving (not before: readiness does not wait for a cache). A failure leaves the cache to fill
    from queries, as it would without warming."""
    assert reader.block_cache is not None
    try:
        warmed = await warm_block_cache(reader.pool, reader.block_cache)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.warning("keyword block cache not warmed", extra={"error": str(exc)})
        return
    log.info(
        "keyword block cache warmed",
        extra={"terms": warmed.terms, "postings": warmed.postings, "seconds": round(warmed.seconds, 2)},
    )


def create_app(settings: Settings | None = None, span_exporter: SpanExporter | None = None) -> FastAPI:
    """The app; `span_exporter` replaces the OTLP exporter (tests read spans from memory)."""
    settings = settings or load_settings(serving=True)
    # Swagger UI and ReDoc from files in the fastapi-offline package, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="RagCorp",
        version=settings.ragcorp_version,
        summary="Hybrid retrieval and grounded answers over your documents.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_unknown_query)],
    )
    app.state.settings = settings
    app.state.metrics = metrics = ServiceMetrics()
    app.state.tracer_provider = build_tracer_provider(settings, span_exporter)
    install_error_handlers(app, metrics)
    # Outermost last: the request context sees every response, CORS answers preflights early.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        stall_seconds=settings.request_body_timeout_seconds,
        deadline_seconds=settings.request_body_deadline_seconds,
        max_header_bytes=settings.max_request_header_bytes,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.state.drain = Drain()
    app.add_middleware(DrainMiddleware, drain=app.state.drain)
    for router in (health.router, version.router, metrics_route.router, documents.router, search.router, ask.router):
        app.include_router(router)
    if app.state.tracer_provider is not None:
        instrument(app, app.state.tracer_provider)
    return app
