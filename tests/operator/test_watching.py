"""The children's watches resume, relist and keep their place as a real API server asks them to.

A small HTTP server on loopback answers the watch requests with the API server's own shapes: an
HTTP 410 `Status` (reason `Expired`) for a resourceVersion too old to resume from, and a watch
stream carrying a `BOOKMARK` event, which the server sends only to clients that ask for them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes import client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ragcorp_operator.wakeups import Wakeups
from ragcorp_operator.watching import ChildWatcher
from tests.support.servers import serving

EXPIRED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "too old resource version: 5 (1207)",
    "reason": "Expired",
    "code": 410,
}


class WatchEndpoint:
    """Services in `default`: 410 for resourceVersion 5, else one bookmark at 1300 and the end."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()

    async def services(self, request: Request) -> Response:
        params = dict(request.query_params)
        with self.lock:
            self.requests.append(params)
        if params.get("resourceVersion") == "5":
            return JSONResponse(EXPIRED, status_code=410)
        bookmark = {
            "type": "BOOKMARK",
            "object": {"kind": "Service", "apiVersion": "v1", "metadata": {"resourceVersion": "1300"}},
        }

        async def stream() -> AsyncIterator[bytes]:
            if params.get("allowWatchBookmarks") == "true":
                yield (json.dumps(bookmark) + "\n").encode()

        return StreamingResponse(stream(), media_type="application/json")


@pytest.fixture
def endpoint() -> Iterator[tuple[WatchEndpoint, str]]:
    fake = WatchEndpoint()
    with serving(Starlette(routes=[Route("/api/v1/namespaces/default/services", fake.services)])) as url:
        yield fake, url


def _watch_until(watcher: ChildWatcher, endpoint: WatchEndpoint, requests: int) -> list[dict[str, str]]:
    watcher.start()
    deadline = time.monotonic() + 30
    while len(endpoint.requests) < requests and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.stop()
    with endpoint.lock:
        return list(endpoint.requests)


def test_an_expired_resource_version_is_listed_afresh_and_bookmarks_keep_the_place(
    endpoint: tuple[WatchEndpoint, str],
) -> None:
    fake, url = endpoint
    api = client.ApiClient(client.Configuration(host=url))
    watcher = ChildWatcher(api, "Service", "default", Wakeups())
    watcher._resource_version = "5"  # where an earlier stream left off, since compacted away
    requests = _watch_until(watcher, fake, 3)
    assert requests[0]["resourceVersion"] == "5"
    assert "resourceVersion" not in requests[1], "after a 410 the watch starts afresh, not from 5 again"
    assert requests[2]["resourceVersion"] == "1300", "a bookmark moved the place forward"
    assert all(r["allowWatchBookmarks"] == "true" and r["watch"] == "true" for r in requests)
    assert all(r["labelSelector"] == "app.kubernetes.io/managed-by=ragcorp-operator" for r in requests)
