"""What the app holds for its lifetime, built in the lifespan and read by dependencies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from opentelemetry import trace

from ragcorp_service.api.service_metrics import ServiceMetrics
from ragcorp_service.generation.generators import Generator
from ragcorp_service.providers.embedders import Embedder
from ragcorp_service.retrieval.search import ReadPool
from ragcorp_service.security.api_keys import KeyRing
from ragcorp_service.security.rate_limit import TokenBuckets
from ragcorp_service.services.answering import AnsweringService
from ragcorp_service.services.documents import DocumentService
from ragcorp_service.services.retrieval import RetrievalService
from ragcorp_service.settings import Settings


@dataclass(frozen=True)
class Providers:
    embedder: Embedder
    generator: Generator


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    #: Where searches read: DATABASE_READ_URL's pool when set, else `pool`.
    reader: ReadPool
    providers: Providers
    #: The use cases the routes call.
    documents: DocumentService
    retrieval: RetrievalService
    answering: AnsweringService
    keys: KeyRing
    rate_limits: TokenBuckets
    #: Failed authentications per client address: key guessing is slowed to AUTH_FAILURES_PER_SECOND.
    auth_failures: TokenBuckets
    metrics: ServiceMetrics
    tracer: trace.Tracer
    #: Ingests in progress at once (MAX_CONCURRENT_INGESTS); see `ingest_slots`.
    ingest_slots: asyncio.Semaphore
    #: The keyword block cache filling with the most common words after start (None: no cache).
    cache_warming: asyncio.Task[None] | None = None
