"""Gemini: one configured google-genai client (shared by the embedder here and the generator in
`generation.gemini`), and the embedder.

Retries (with exponential backoff on 408, 429 and 5xx) and timeouts are the SDK's
own, configured here once.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import httpx
import numpy as np
from google import genai
from google.genai import errors, types

from ragcorp_service.providers.embedders import Vector, approximate_token_count, normalised
from ragcorp_service.providers.unavailable import ProviderUnavailable
from ragcorp_service.settings import Settings

RETRYABLE_STATUS = (408, 429, 500, 502, 503, 504)


def unavailable(exc: BaseException) -> bool:
    """A failure of Gemini itself (5xx, a rate limit, the network), not of our request or key."""
    if isinstance(exc, errors.APIError):
        return exc.code in RETRYABLE_STATUS or exc.code >= 500
    return isinstance(exc, aiohttp.ClientError | httpx.TransportError | TimeoutError)


def make_gemini_client(settings: Settings) -> genai.Client:
    assert settings.google_api_key is not None
    return genai.Client(
        api_key=settings.google_api_key.get_secret_value(),
        http_options=types.HttpOptions(
            base_url=settings.gemini_base_url,
            timeout=int(settings.gemini_timeout_seconds * 1000),
            retry_options=types.HttpRetryOptions(
                attempts=settings.gemini_max_attempts,
                initial_delay=settings.gemini_retry_initial_delay_seconds,
                max_delay=30.0,
                http_status_codes=list(RETRYABLE_STATUS),
            ),
        ),
    )


class GeminiEmbedder:
    """Gemini embeddings at a fixed output dimension, batched as the API allows."""

    provider = "gemini"
    batch_limit = 100

    def __init__(self, client: genai.Client, model_name: str, dimensions: int) -> None:
        self.model = model_name
        self.dimensions = dimensions
        self._client = client

    async def _embed(self, texts: Sequence[str], task_type: str) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self.batch_limit):
            batch = list(texts[start : start + self.batch_limit])
            try:
                response = await self._client.aio.models.embed_content(
                    model=self.model,
                    contents=batch,  # type: ignore[arg-type]
                    config=types.EmbedContentConfig(output_dimensionality=self.dimensions, task_type=task_type),
                )
            except Exception as exc:
                if unavailable(exc):
                    raise ProviderUnavailable("Gemini embedding", exc) from exc
                raise
            embeddings = response.embeddings or []
            if len(embeddings) != len(batch):
                raise RuntimeError(f"Gemini returned {len(embeddings)} embeddings for {len(batch)} texts")
            matrix = np.array([e.values or [] for e in embeddings], dtype=np.float32)
            if matrix.shape[1] != self.dimensions:
                raise RuntimeError(f"Gemini returned {matrix.shape[1]} dimensions, expected {self.dimensions}")
            vectors.extend(normalised(matrix))
        return vectors

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return await self._embed(texts, "RETRIEVAL_DOCUMENT") if texts else []

    async def embed_query(self, text: str) -> Vector:
        return (await self._embed([text], "RETRIEVAL_QUERY"))[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return approximate_token_count(texts)
