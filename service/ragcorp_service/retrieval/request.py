"""What a search asks for, and its filters as SQL shared by every retrieval mode."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["hybrid", "vector", "keyword"]


@dataclass(frozen=True)
class SearchRequest:
    query: str
    top_k: int = 5
    mode: Mode = "hybrid"
    collection: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    #: The collections the caller may read (its API key's); None: every one.
    allowed_collections: frozenset[str] | None = None


def filter_sql(request: SearchRequest, first_param: int) -> tuple[str, list[Any]]:
    """The request's filters on `chunks c` as a WHERE condition ("" for none) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if request.collection is not None:
        params.append(request.collection)
        clauses.append(f"c.collection = ${first_param + len(params) - 1}")
    if request.allowed_collections is not None:
        params.append(sorted(request.allowed_collections))
        clauses.append(f"c.collection = ANY(${first_param + len(params) - 1}::text[])")
    if request.filters:
        params.append(json.dumps(request.filters))
        clauses.append(
            f"c.document_id IN (SELECT id FROM documents WHERE metadata @> ${first_param + len(params) - 1}::jsonb)"
        )
    return " AND ".join(clauses), params
