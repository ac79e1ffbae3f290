"""Which int8 export recipe: each candidate's agreement with the fp32 model on a broad text set.

The recipe is chosen by agreement with fp32 (cosine of each text's vectors, and how
many of a query's ten nearest texts stay the same), measured on texts from several
kinds of writing — SciFact abstracts and claims, this project's own docs and
handbook, the summaries of every installed package and the standard library's module
docstrings — because a recipe chosen by
one benchmark's score fits that benchmark: today's was chosen on SciFact train and
loses more on the held-out split. SciFact train's nDCG@10 (vector search, whole
abstracts, exact cosine, no database) is printed beside it, not chosen by.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragcorp_service.client.beir import read_corpus, read_qrels, read_queries
from ragcorp_service.client.ranking_metrics import ndcg_at_k
from ragcorp_service.local_models import DEFAULT, ONNX_FP32, ExportRecipe, Quantisation, onnx_model
from ragcorp_service.providers.embedders import OnnxEmbedder
from ragcorp_service.providers.onnx_export import export_models, weights_dir

ROOT = Path(__file__).resolve().parents[1]
NEIGHBOURS = 10

CANDIDATES: dict[str, Quantisation] = {
    "per-channel, down-projections fp32 (default)": Quantisation(),
    "per-channel, every MatMul int8": Quantisation(fp32_down_projections=False),
    "per-tensor, down-projections fp32": Quantisation(per_channel=False),
    "per-channel, down-projections fp32, embedding tables int8": Quantisation(int8_embeddings=True),
}


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if len(p.split()) >= 6]


def _stdlib_docstrings() -> list[str]:
    """The first paragraph of each standard-library module's docstring: software prose of many authors."""
    found = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            docstring = ast.get_docstring(ast.parse(path.read_text(errors="replace")))
        except SyntaxError:
            continue
        found.extend(_paragraphs(docstring or "")[:1])
    return found


def broad_texts(corpus: Path, queries: Sequence[str], documents: int) -> tuple[list[str], list[str]]:
    """(pool, queries). The pool: SciFact abstracts, this project's docs and handbook, every installed
    package's summary, the standard library's module docstrings. The queries: SciFact claims, and the
    first sentence of each text of the other kinds."""
    prose = [
        p
        for path in sorted([*ROOT.glob("docs/*.md"), *ROOT.glob("examples/docs/*"), ROOT / "README.md"])
        for p in _paragraphs(path.read_text(errors="replace"))
    ]
    summaries = sorted(
        {s for d in importlib.metadata.distributions() if len((s := d.metadata["Summary"] or "").split()) >= 5}
    )
    others = [*prose, *summaries, *_stdlib_docstrings()]
    abstracts = [f"{d['title']}. {d['text']}" for _, d in zip(range(documents), read_corpus(corpus), strict=False)]
    first_sentences = [text.split(". ")[0] for text in others]
    return [*abstracts, *others], [*queries, *first_sentences]


def _agreement(
    vectors: np.ndarray, reference: np.ndarray, queries: np.ndarray, reference_queries: np.ndarray
) -> dict[str, float]:
    cosines = (vectors * reference).sum(axis=1)
    ours = np.argsort(-(queries @ vectors.T), axis=1)[:, :NEIGHBOURS]
    theirs = np.argsort(-(reference_queries @ reference.T), axis=1)[:, :NEIGHBOURS]
    overlap = [len(set(a) & set(b)) / NEIGHBOURS for a, b in zip(ours, theirs, strict=True)]
    return {
        "cosine_mean": round(float(cosines.mean()), 5),
        "cosine_p01": round(float(np.quantile(cosines, 0.01)), 5),
        "cosine_min": round(float(cosines.min()), 5),
        f"overlap_at_{NEIGHBOURS}": round(float(np.mean(overlap)), 4),
    }


@dataclass(frozen=True)
class _SciFact:
    """SciFact train, read once: whole abstracts, and the judged claims with their relevant ids."""

    ids: list[str]
    abstracts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @classmethod
    def read(cls, corpus: Path, queries_file: Path, qrels_file: Path) -> _SciFact:
        documents = list(read_corpus(corpus))
        qrels = read_qrels(qrels_file)
        return cls(
            [d["metadata"]["beir_id"] for d in documents],
            [f"{d['title']}. {d['text']}" for d in documents],
            {q: t for q, t in read_queries(queries_file).items() if q in qrels},
            qrels,
        )

    def ndcg(self, embedder: OnnxEmbedder) -> float:
        """Vector search over whole abstracts with exact cosine: nDCG@10."""
        matrix = np.array(embedder.encode(self.abstracts))
        scores = np.array(embedder.encode(list(self.queries.values()))) @ matrix.T
        rankings = [[self.ids[i] for i in np.argsort(-row)[:10]] for row in scores]
        total = sum(ndcg_at_k(r, self.qrels[q], 10) for q, r in zip(self.queries, rankings, strict=True))
        return round(total / len(self.queries), 4)


def measure(corpus: Path, queries_file: Path, qrels_file: Path, documents: int) -> dict[str, Any]:
    pool, queries = broad_texts(corpus, list(read_queries(queries_file).values()), documents)
    scifact = _SciFact.read(corpus, queries_file, qrels_file)
    weights = weights_dir()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        models = {name: onnx_model("int8", ExportRecipe(quantisation=q)) for name, q in CANDIDATES.items()}
        started = time.perf_counter()
        export_models(weights, directory, [ONNX_FP32, *models.values()])
        exported = time.perf_counter() - started
        reference_model = OnnxEmbedder(ONNX_FP32, directory)
        reference, reference_queries = (np.array(reference_model.encode(t)) for t in (pool, queries))
        results: dict[str, Any] = {"fp32": {"scifact_train_vector_ndcg_at_10": scifact.ndcg(reference_model)}}
        for name, model in models.items():
            embedder = OnnxEmbedder(model, directory)
            vectors, query_vectors = (np.array(embedder.encode(t)) for t in (pool, queries))
            results[name] = {
                "model": model.name,
                "size_mib": round((directory / model.onnx_file).stat().st_size / 2**20, 1),
                **_agreement(vectors, reference, query_vectors, reference_queries),
                "scifact_train_vector_ndcg_at_10": scifact.ndcg(embedder),
            }
    return {
        "texts": len(pool),
        "queries": len(queries),
        "export_seconds": round(exported, 1),
        "default": DEFAULT.name,
        "recipes": results,
    }


def lines(result: dict[str, Any]) -> list[str]:
    out = [
        f"recipes: {result['texts']} texts, {result['queries']} queries; fp32 SciFact vector nDCG@10 "
        f"{result['recipes']['fp32']['scifact_train_vector_ndcg_at_10']}"
    ]
    for name, row in result["recipes"].items():
        if name != "fp32":
            out.append(
                f"recipes: {name}: cosine mean {row['cosine_mean']} p01 {row['cosine_p01']} min {row['cosine_min']}, "
                f"overlap@10 {row['overlap_at_10']}, SciFact vector nDCG@10 {row['scifact_train_vector_ndcg_at_10']}, "
                f"{row['size_mib']} MiB"
            )
    return out
