"""Reading a BEIR-format dataset: corpus.jsonl, queries.jsonl, qrels/*.tsv."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_corpus(path: Path) -> Iterator[dict[str, Any]]:
    """Documents as API payloads; the BEIR id travels in metadata and source."""
    corpus = path / "corpus.jsonl" if path.is_dir() else path
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                text = row.get("text") or ""
                title = row.get("title") or ""
                yield {
                    "title": title or row["_id"],
                    "text": text or title,
                    "source": f"beir:{row['_id']}",
                    "metadata": {"beir_id": str(row["_id"])},
                }


def read_queries(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as lines:
        return {str(q["_id"]): q["text"] for q in map(json.loads, lines) if q}


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels
