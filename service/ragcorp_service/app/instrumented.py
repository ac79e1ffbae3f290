"""Providers wrapped with a span and latency/error metrics, so every caller is measured.

The wrappers satisfy the same protocols as what they wrap; nothing downstream
knows it is being watched.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace

from ragcorp_service.api.service_metrics import ServiceMetrics
from ragcorp_service.generation.generators import Generator
from ragcorp_service.providers.embedders import Embedder, Vector
from ragcorp_service.retrieval.results import RetrievedChunk


@contextmanager
def measured(
    metrics: ServiceMetrics, tracer: trace.Tracer, operation: str, provider: str, count: int
) -> Iterator[None]:
    started = time.perf_counter()
    with tracer.start_as_current_span(operation, attributes={"ragcorp.provider": provider, "ragcorp.items": count}):
        try:
            yield
        except Exception:
            metrics.provider_errors.labels(operation, provider).inc()
            raise
        finally:
            metrics.provider_seconds.labels(operation, provider).observe(time.perf_counter() - started)


class InstrumentedEmbedder:
    def __init__(self, inner: Embedder, metrics: ServiceMetrics, tracer: trace.Tracer) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.dimensions = inner.dimensions
        self._metrics = metrics
        self._tracer = tracer

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        with measured(self._metrics, self._tracer, "embed", self.provider, len(texts)):
            return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> Vector:
        with measured(self._metrics, self._tracer, "embed", self.provider, 1):
            return await self.inner.embed_query(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


class InstrumentedGenerator:
    def __init__(self, inner: Generator, metrics: ServiceMetrics, tracer: trace.Tracer) -> None:
        self.inner = inner
        self.name = inner.name
        self._metrics = metrics
        self._tracer = tracer
        self._provider = inner.name.split(":", 1)[0]

    async def stream(self, question: str, contexts: list[RetrievedChunk]) -> AsyncIterator[str]:
        with measured(self._metrics, self._tracer, "generate", self._provider, len(contexts)):
            async for piece in self.inner.stream(question, contexts):
                yield piece

    async def check(self) -> None:
        await self.inner.check()
