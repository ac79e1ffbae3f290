"""The offline embedder alone (no database): today's default against the fp32 graph and,
where the optional torch extra is installed, the PyTorch path, on the same SciFact
chunk texts, in the same run.

Throughput embeds every text once after a warm-up; query latency embeds SciFact
train queries one at a time, as `/v1/search` does; agreement is the cosine between
each text's vector from a backend and from the reference (1.0 means the same vector):
PyTorch where it is installed, else the fp32 ONNX graph (whose vectors the tests hold
to PyTorch's, cosine >= 0.9999).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.ingest import chunk_inputs
from bench.search_latency import query_embedding
from ragcorp_service.client.beir import read_corpus
from ragcorp_service.local_models import DEFAULT, ONNX_FP32, TORCH, default_onnx_dir
from ragcorp_service.providers.embedders import LocalEmbedder, OnnxEmbedder, local_embedder

WARM_UP = 32


def _throughput(embedder: LocalEmbedder, texts: list[str]) -> tuple[float, np.ndarray]:
    embedder.encode(texts[:WARM_UP])
    started = time.perf_counter()
    vectors = np.array(embedder.encode(texts))
    return len(texts) / (time.perf_counter() - started), vectors


def _query_p50_ms(embedder: LocalEmbedder, queries: Sequence[str]) -> float:
    return float(query_embedding(embedder, queries)["p50_ms"])


def _agreement(vectors: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    cosines = (vectors * reference).sum(axis=1)
    return {"cosine_mean": round(float(cosines.mean()), 5), "cosine_min": round(float(cosines.min()), 5)}


def _torch_installed() -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None


def measure(corpus: Path, queries: Sequence[str], documents: int, batch_sizes: Sequence[int]) -> dict[str, Any]:
    onnx_dir = default_onnx_dir()
    reference_model = TORCH if _torch_installed() else ONNX_FP32
    reference_embedder = local_embedder(reference_model.name, onnx_dir)
    sample = [d for _, d in zip(range(documents), read_corpus(corpus), strict=False)]
    texts = chunk_inputs(sample, reference_embedder)
    reference_rate, reference = _throughput(reference_embedder, texts)
    backends: dict[str, Any] = {
        reference_model.name: {
            "chunks_per_s": round(reference_rate, 1),
            "query_p50_ms": _query_p50_ms(reference_embedder, queries),
        }
    }
    for model in (DEFAULT, ONNX_FP32) if reference_model is TORCH else (DEFAULT,):
        embedder = local_embedder(model.name, onnx_dir)
        rate, vectors = _throughput(embedder, texts)
        backends[model.name] = {
            "chunks_per_s": round(rate, 1),
            "query_p50_ms": _query_p50_ms(embedder, queries),
            **_agreement(vectors, reference),
        }
    # The default's batch size, chosen by these figures (a few hundred texts each).
    by_batch = {
        size: round(_throughput(OnnxEmbedder(DEFAULT, onnx_dir, size), texts[:300])[0], 1) for size in batch_sizes
    }
    default = backends[DEFAULT.name]
    return {
        "texts": len(texts),
        "documents": len(sample),
        "default": DEFAULT.name,
        "reference": reference_model.name,
        "backends": backends,
        "default_chunks_per_s_by_batch_size": by_batch,
        "ratio": round(default["chunks_per_s"] / reference_rate, 2),
    }


def line(result: dict[str, Any]) -> str:
    """The one line the issue asked for."""
    default = result["backends"][result["default"]]
    reference_name = result.get("reference", TORCH.name)
    reference = result["backends"][reference_name]
    return (
        f"embedder: {result['default']} {default['chunks_per_s']} chunks/s, {reference_name} "
        f"{reference['chunks_per_s']} chunks/s on {result['texts']} texts, ratio {result['ratio']:.2f}x"
    )
