"""The metric gate's one question to Prometheus (is the preview healthy enough to promote?) and
the team's analysis checks (`measure`).

Three answers besides pass and fail, as a real Prometheus gives them: a healthy version
has no 5xx series at all, so the error count is `... or vector(0)` (zero, not an empty
vector); no requests in the window is "nodata" (0/0, or no series); and a Prometheus
that cannot be reached or answers with an error is "unmeasured" — a failure to
measure, which the rollout never takes for a pass.
"""

from __future__ import annotations

import httpx

from ragcorp_operator.rollout import GateResult
from ragcorp_operator.rollout.metric_checks import Measurement, MetricCheck, Stage


class _NoAnswer(Exception):
    """Prometheus did not answer the query with a vector."""


def _scalar(client: httpx.Client, url: str, query: str) -> float | None:
    """The query's one value; None for an empty vector or NaN (no traffic in the window)."""
    response = client.get(f"{url.rstrip('/')}/api/v1/query", params={"query": query})
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "success" or body.get("data", {}).get("resultType") != "vector":
        raise _NoAnswer(str(body.get("error") or body)[:200])
    result = body["data"]["result"]
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if value != value else value


def gate_queries(namespace: str, service: str, window_seconds: int) -> tuple[str, str]:
    """(error rate, p95 latency) of the Service's requests over the window, in PromQL."""
    selector = f'namespace="{namespace}",service="{service}"'
    window = f"{max(window_seconds, 60)}s"
    errors = (
        f'(sum(rate(ragcorp_http_requests_total{{{selector},status=~"5.."}}[{window}])) or vector(0))'
        f" / sum(rate(ragcorp_http_requests_total{{{selector}}}[{window}]))"
    )
    p95 = (
        f"histogram_quantile(0.95, sum by (le) "
        f"(rate(ragcorp_http_request_duration_seconds_bucket{{{selector}}}[{window}])))"
    )
    return errors, p95


def evaluate_gate(
    url: str,
    namespace: str,
    service: str,
    window_seconds: int,
    max_error_rate: float,
    max_p95_seconds: float,
    timeout: float = 5.0,
) -> GateResult:
    errors, p95 = gate_queries(namespace, service, window_seconds)
    try:
        with httpx.Client(timeout=timeout) as client:
            error_rate = _scalar(client, url, errors)
            latency = _scalar(client, url, p95)
    except (httpx.HTTPError, _NoAnswer, ValueError, KeyError, IndexError, TypeError):
        return "unmeasured"
    if error_rate is None or latency is None:
        return "nodata"
    return "pass" if error_rate <= max_error_rate and latency <= max_p95_seconds else "fail"


def check_query(check: MetricCheck, namespace: str, service: str, name: str) -> str:
    """The check's PromQL with `{{namespace}}`, `{{service}}` and `{{name}}` filled in."""
    return check.query.replace("{{namespace}}", namespace).replace("{{service}}", service).replace("{{name}}", name)


def measure(url: str, queries: dict[str, str], stage: Stage, timeout: float = 5.0) -> tuple[Measurement, ...]:
    """One measurement of each check (name -> query): its value, or None with what went wrong
    (inconclusive). A Prometheus that cannot be reached is asked once, not once per check: a pass
    never waits more than one timeout for it."""
    measured: list[Measurement] = []
    unreachable = ""
    with httpx.Client(timeout=timeout) as client:
        for name, query in queries.items():
            value, error = None, unreachable
            if not unreachable:
                try:
                    value = _scalar(client, url, query)
                    error = "" if value is not None else "no data (an empty result or NaN)"
                except httpx.HTTPStatusError as exc:
                    error = f"Prometheus answered {exc.response.status_code}: {exc.response.text[:160]}"
                except httpx.HTTPError as exc:
                    unreachable = error = f"Prometheus unreachable: {exc}"[:200]
                except (_NoAnswer, ValueError, KeyError, IndexError, TypeError) as exc:
                    error = f"not a number: {exc}"[:200]
            measured.append(Measurement(name, stage, value, error))
    return tuple(measured)
