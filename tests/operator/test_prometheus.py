"""The metric gate's Prometheus queries, against a small fake Prometheus on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ragcorp_operator.prometheus import evaluate_gate
from tests.service.servers import serving


class FakePrometheus:
    def __init__(self) -> None:
        self.error_rate: float | None = 0.0
        self.p95: float | None = 0.1
        self.queries: list[str] = []

    async def query(self, request: Request) -> JSONResponse:
        query = request.query_params["query"]
        self.queries.append(query)
        value = self.p95 if query.startswith("histogram_quantile") else self.error_rate
        result: list[dict[str, Any]] = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
        return JSONResponse({"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.fixture
def prometheus() -> Iterator[tuple[FakePrometheus, str]]:
    fake = FakePrometheus()
    with serving(Starlette(routes=[Route("/api/v1/query", fake.query)])) as url:
        yield fake, url


def gate(url: str) -> str:
    return evaluate_gate(url, "prod", "rag-preview", 300, max_error_rate=0.05, max_p95_seconds=2.0)


def test_healthy_preview_passes_and_the_queries_select_the_preview(prometheus: tuple[FakePrometheus, str]) -> None:
    fake, url = prometheus
    assert gate(url) == "pass"
    assert all('namespace="prod",service="rag-preview"' in q and "[300s]" in q for q in fake.queries)


@pytest.mark.parametrize(
    ("error_rate", "p95", "expected"),
    [(0.2, 0.1, "fail"), (0.0, 3.0, "fail"), (None, 0.1, "nodata"), (float("nan"), 0.1, "nodata")],
)
def test_thresholds_and_missing_data(
    prometheus: tuple[FakePrometheus, str], error_rate: float | None, p95: float, expected: str
) -> None:
    fake, url = prometheus
    fake.error_rate, fake.p95 = error_rate, p95
    assert gate(url) == expected


def test_unreachable_prometheus_is_no_data_not_a_pass() -> None:
    assert gate("http://127.0.0.1:9") == "nodata"
