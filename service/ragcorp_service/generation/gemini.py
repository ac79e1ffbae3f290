"""Grounded generation with Gemini: numbered contexts in, `[n]`-cited answer out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google import genai
from google.genai import types

from ragcorp_service.providers.gemini import unavailable
from ragcorp_service.providers.unavailable import ProviderUnavailable
from ragcorp_service.retrieval.results import RetrievedChunk

SYSTEM_INSTRUCTION = (
    "You answer questions using only the numbered context passages you are given. "
    "Cite every claim with the passage number in square brackets, like [1] or [2, 3]. "
    "If the passages do not contain the answer, say so plainly and cite nothing."
)


def build_prompt(question: str, contexts: list[RetrievedChunk]) -> str:
    passages = "\n\n".join(f"[{n}] {chunk.title}\n{chunk.text}" for n, chunk in enumerate(contexts, 1))
    return f"Context passages:\n\n{passages}\n\nQuestion: {question}"


class GeminiGenerator:
    def __init__(self, client: genai.Client, model: str, check_timeout_seconds: float = 5.0) -> None:
        self.name = f"gemini:{model}"
        self._client = client
        self._model = model
        self._check_timeout_ms = int(check_timeout_seconds * 1000)

    async def stream(self, question: str, contexts: list[RetrievedChunk]) -> AsyncIterator[str]:
        try:
            response = await self._client.aio.models.generate_content_stream(
                model=self._model,
                contents=build_prompt(question, contexts),
                config=types.GenerateContentConfig(system_instruction=SYSTEM_INSTRUCTION, temperature=0.2),
            )
            async for chunk in response:
                if chunk.text:
                    yield chunk.text
        except Exception as exc:
            if unavailable(exc):
                raise ProviderUnavailable("Gemini generation", exc) from exc
            raise

    async def check(self) -> None:
        """A metadata read of the model: proves the key and endpoint work, costs no tokens."""
        await self._client.aio.models.get(
            model=self._model,
            config=types.GetModelConfig(
                http_options=types.HttpOptions(
                    timeout=self._check_timeout_ms, retry_options=types.HttpRetryOptions(attempts=1)
                )
            ),
        )
