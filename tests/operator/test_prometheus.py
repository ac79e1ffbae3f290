"""The metric gate's queries against a real Prometheus scraping the service's real metrics.

Prometheus (Debian's package, as DESIGN.md names it) scrapes three sets of the service's own
`ServiceMetrics` — a healthy version (requests, no 5xx series at all), a failing one (5xx),
and an idle one (series, no requests) — labelled with `namespace` and `service` as a
ServiceMonitor's relabelling labels them. What the gate reads is what Prometheus answers:
empty vectors for absent series, NaN for 0/0.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.routing import Mount

from ragcorp_operator.prometheus import check_query, evaluate_gate, measure
from ragcorp_operator.rollout.metric_checks import MetricCheck, meets
from ragcorp_service.api.service_metrics import ServiceMetrics
from tests.support.servers import free_port, serving

VERSIONS = ("healthy", "failing", "idle")
SCRAPE = """
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
{jobs}
"""
JOB = """  - job_name: {version}
    metrics_path: /{version}/
    static_configs: [{{targets: ["{target}"], labels: {{namespace: prod, service: rag-{version}}}}}]
"""


def _prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        message = (
            "no prometheus binary: `make test` installs Debian's package where it can (apt-get install prometheus)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="module")
def versions() -> dict[str, ServiceMetrics]:
    return {version: ServiceMetrics() for version in VERSIONS}


@pytest.fixture(scope="module")
def prometheus(versions: dict[str, ServiceMetrics]) -> Iterator[str]:
    binary = _prometheus_binary()
    app = Starlette(routes=[Mount(f"/{v}", make_asgi_app(m.registry)) for v, m in versions.items()])
    with serving(app) as exposition, tempfile.TemporaryDirectory(prefix="prometheus-") as directory:
        target = exposition.removeprefix("http://")
        config = Path(directory) / "prometheus.yml"
        config.write_text(SCRAPE.format(jobs="".join(JOB.format(version=v, target=target) for v in VERSIONS)))
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _until(lambda: _answers(f"{url}/-/ready"), "Prometheus did not get ready")
            _serve_traffic(versions, url)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _until(condition: object, message: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.25)


def _serve_traffic(versions: dict[str, ServiceMetrics], url: str, seconds: float = 90) -> None:
    """Requests until Prometheus has scraped increases of both busy versions (its static targets
    start a few seconds after it is ready): the healthy version answers 200s only (it never creates
    a 5xx series), the failing one a 500 in four; the idle one took one request before any scrape."""
    versions["idle"].requests.labels("GET", "/v1/search", "200").inc()
    versions["idle"].request_seconds.labels("GET", "/v1/search").observe(0.05)
    increasing = [
        'sum(rate(ragcorp_http_requests_total{service="rag-healthy"}[60s])) > 0',
        'sum(rate(ragcorp_http_requests_total{service="rag-failing",status=~"5.."}[60s])) > 0',
    ]
    deadline = time.monotonic() + seconds
    for round_ in itertools.count():
        for version, status in (("healthy", "200"), ("failing", "500" if round_ % 4 == 0 else "200")):
            versions[version].requests.labels("POST", "/v1/search", status).inc()
            versions[version].request_seconds.labels("POST", "/v1/search").observe(0.05)
        time.sleep(0.25)
        if round_ % 4 == 3 and all(_has_result(url, query) for query in increasing):
            return
        if time.monotonic() > deadline:
            raise AssertionError("Prometheus scraped no increase")


def _has_result(url: str, query: str) -> bool:
    response = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5)
    return bool(response.json()["data"]["result"])


def gate(url: str, service: str) -> str:
    return evaluate_gate(url, "prod", service, 60, max_error_rate=0.05, max_p95_seconds=2.0)


def test_a_healthy_version_with_no_5xx_series_passes(prometheus: str) -> None:
    """No 5xx series at all is an error rate of 0, not "no data"."""
    absent = httpx.get(
        f"{prometheus}/api/v1/query",
        params={"query": 'ragcorp_http_requests_total{service="rag-healthy",status=~"5.."}'},
        timeout=5,
    ).json()
    assert absent["data"]["result"] == []  # what a real Prometheus answers for the healthy version
    assert gate(prometheus, "rag-healthy") == "pass"


def test_a_version_answering_5xx_fails(prometheus: str) -> None:
    assert gate(prometheus, "rag-failing") == "fail"


def test_no_traffic_is_no_data_not_a_pass(prometheus: str) -> None:
    assert gate(prometheus, "rag-idle") == "nodata"  # series, no requests in the window: 0/0
    assert gate(prometheus, "rag-unknown") == "nodata"  # no series at all: empty vectors


def test_a_prometheus_that_cannot_answer_is_unmeasured(prometheus: str, versions: dict[str, ServiceMetrics]) -> None:
    """Unreachable, or something else on the port (here the metrics exposition itself): a failure to
    measure, which the rollout never takes for a pass."""
    assert gate("http://127.0.0.1:9", "rag-healthy") == "unmeasured"
    with serving(make_asgi_app(versions["healthy"].registry)) as not_prometheus:
        assert gate(not_prometheus, "rag-healthy") == "unmeasured"


REQUEST_RATE = MetricCheck(
    "request-rate",
    'sum(rate(ragcorp_http_requests_total{namespace="{{namespace}}",service="{{service}}"}[60s]))',
    "result > 0",
)


def test_an_analysis_check_measures_the_service_it_judges(prometheus: str) -> None:
    """A team's check is filled in for the Service judged, and its value is Prometheus's."""
    query = check_query(REQUEST_RATE, "prod", "rag-healthy", "rag")
    assert 'service="rag-healthy"' in query and 'namespace="prod"' in query
    idle_query = check_query(REQUEST_RATE, "prod", "rag-unknown", "rag")
    measured, idle = measure(prometheus, {"busy": query, "idle": idle_query}, "prePromotion")
    assert measured.value is not None and measured.value > 0 and meets(REQUEST_RATE.success_condition, measured.value)
    assert idle.value is None and "no data" in idle.error


def test_a_check_prometheus_cannot_answer_says_why(prometheus: str) -> None:
    """A query Prometheus refuses, or no Prometheus at all, is inconclusive with the reason kept
    (it lands in status.analysis, where a person fixes the query); an unreachable one is asked once."""
    [refused] = measure(prometheus, {"broken": "sum(rate(ragcorp_http_requests_total[60s]"}, "prePromotion")
    assert refused.value is None and "Prometheus answered 400" in refused.error and "parse error" in refused.error
    first, second = measure("http://127.0.0.1:9", {"a": "vector(1)", "b": "vector(2)"}, "postPromotion")
    assert first.value is None and "unreachable" in first.error and second.error == first.error


def test_the_gate_asks_prometheus_after_the_switch_only_when_it_runs_then() -> None:
    """The team's post-promotion checks hold the previous colour as the gate does; a gate with
    `afterPromotion: false` is not asked a question whose answer nothing reads."""
    from ragcorp_operator.pass_plan import gate_service
    from ragcorp_operator.rollout import RolloutState
    from ragcorp_operator.spec import parse_spec

    def spec(after_promotion: bool) -> object:
        gate = {"enabled": True, "afterPromotion": after_promotion}
        check = {"name": "p99", "query": "vector(1)", "successCondition": "result < 2", "stages": ["postPromotion"]}
        return parse_spec(
            {
                "image": "i",
                "secrets": {"databaseUrl": {"name": "db", "key": "url"}},
                "strategy": {"blueGreen": {"metricGate": gate, "analysis": {"metrics": [check]}}},
            }
        )

    after_switch = RolloutState(phase="ScalingDown", verified_after_promotion=False)
    assert gate_service(spec(True), "rag", after_switch) == "rag"  # type: ignore[arg-type]
    assert gate_service(spec(False), "rag", after_switch) is None  # type: ignore[arg-type]
    assert gate_service(spec(False), "rag", RolloutState(phase="Verifying")) == "rag-preview"  # type: ignore[arg-type]
