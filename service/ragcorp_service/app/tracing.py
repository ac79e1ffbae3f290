"""OpenTelemetry: FastAPI and asyncpg spans, plus our own for embed, retrieve, generate.

Each app gets its own TracerProvider (no process-global state), exporting over
OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT; tests hand in an in-memory exporter.
With OTEL_ENABLED=0 the tracer is a no-op and nothing is instrumented.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from ragcorp_service.settings import Settings


def build_tracer_provider(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider | None:
    if not settings.otel_enabled and exporter is None:
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": settings.otel_service_name, "service.version": settings.ragcorp_version}
        )
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint)))
    return provider


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz,metrics")
    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]  # one per process (a singleton)
    if not instrumentor.is_instrumented_by_opentelemetry:  # asyncpg is patched process-wide, once
        instrumentor.instrument(tracer_provider=provider)


def tracer_for(provider: TracerProvider | None, version: str) -> trace.Tracer:
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer("ragcorp_service", version)
