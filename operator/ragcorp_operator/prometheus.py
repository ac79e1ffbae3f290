"""The metric gate's one question to Prometheus: is the preview healthy enough to promote?"""

from __future__ import annotations

import httpx

from ragcorp_operator.rollout import GateResult


def _scalar(client: httpx.Client, url: str, query: str) -> float | None:
    response = client.get(f"{url.rstrip('/')}/api/v1/query", params={"query": query})
    response.raise_for_status()
    result = response.json().get("data", {}).get("result") or []
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if value != value else value  # NaN (0/0: no traffic) is no data


def evaluate_gate(
    url: str,
    namespace: str,
    service: str,
    window_seconds: int,
    max_error_rate: float,
    max_p95_seconds: float,
    timeout: float = 5.0,
) -> GateResult:
    selector = f'namespace="{namespace}",service="{service}"'
    window = f"{max(window_seconds, 60)}s"
    errors = (
        f'sum(rate(ragcorp_http_requests_total{{{selector},status=~"5.."}}[{window}]))'
        f" / sum(rate(ragcorp_http_requests_total{{{selector}}}[{window}]))"
    )
    p95 = (
        f"histogram_quantile(0.95, sum by (le) "
        f"(rate(ragcorp_http_request_duration_seconds_bucket{{{selector}}}[{window}])))"
    )
    try:
        with httpx.Client(timeout=timeout) as client:
            error_rate = _scalar(client, url, errors)
            latency = _scalar(client, url, p95)
    except (httpx.HTTPError, ValueError, KeyError, IndexError):
        return "nodata"
    if error_rate is None or latency is None:
        return "nodata"
    return "pass" if error_rate <= max_error_rate and latency <= max_p95_seconds else "fail"
