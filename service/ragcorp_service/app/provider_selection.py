"""Choosing providers from settings: Gemini when a key is configured, else local."""

from __future__ import annotations

from ragcorp_service.api.state import Providers
from ragcorp_service.generation.extractive import ExtractiveGenerator
from ragcorp_service.providers.embedders import local_embedder
from ragcorp_service.settings import Settings


def build_providers(settings: Settings) -> Providers:
    if settings.provider == "gemini":
        from ragcorp_service.generation.gemini import GeminiGenerator
        from ragcorp_service.providers.gemini import GeminiEmbedder, make_gemini_client

        client = make_gemini_client(settings)
        return Providers(
            embedder=GeminiEmbedder(client, settings.resolved_embedding_model, settings.resolved_embedding_dimensions),
            generator=GeminiGenerator(client, settings.generation_model),
        )
    embedder = local_embedder(settings.resolved_embedding_model, settings.embedder_onnx_dir, settings.embedder_threads)
    return Providers(embedder=embedder, generator=ExtractiveGenerator(embedder))
