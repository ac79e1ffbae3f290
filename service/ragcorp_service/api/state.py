"""What the app holds for its lifetime, built in the lifespan and read by dependencies."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from opentelemetry import trace

from ragcorp_service.api.metrics import ServiceMetrics
from ragcorp_service.api.providers import Providers
from ragcorp_service.ingestion.pipeline import Ingestor
from ragcorp_service.retrieval.search import ReadPool, SearchTuning
from ragcorp_service.security.api_keys import KeyRing
from ragcorp_service.security.rate_limit import TokenBuckets
from ragcorp_service.settings import Settings


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    #: Where searches read: DATABASE_READ_URL's pool when set, else `pool`.
    reader: ReadPool
    providers: Providers
    ingestor: Ingestor
    tuning: SearchTuning
    keys: KeyRing
    rate_limits: TokenBuckets
    #: Failed authentications per client address: key guessing is slowed to AUTH_FAILURES_PER_SECOND.
    auth_failures: TokenBuckets
    metrics: ServiceMetrics
    tracer: trace.Tracer
