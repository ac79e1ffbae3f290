"""Retrieval quality on BEIR SciFact (train split) through the real service: `ragcorp eval`."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from ragcorp_service.client.cli import main as ragcorp

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def scifact_paths() -> tuple[Path, Path, Path]:
    qrels = SCIFACT / "qrels"
    qrels_file = qrels / "train.tsv" if qrels.is_dir() else qrels
    return SCIFACT, SCIFACT / "queries-train.jsonl", qrels_file


def evaluate(url: str) -> dict[str, Any]:
    """Ingests the corpus (documents already stored are skipped), then scores each mode."""
    corpus, queries, qrels = scifact_paths()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = ragcorp(
            ["--url", url, "eval", "--beir", str(corpus), "--queries", str(queries), "--qrels", str(qrels), "--json"]
        )
    if status != 0:
        raise RuntimeError(f"ragcorp eval exited with {status}")
    report: dict[str, Any] = json.loads(out.getvalue())
    return report
