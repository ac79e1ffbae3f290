"""The node's client of the API server: HTTPS with a client certificate, as the kubelet's is.

Just the calls the node agent, the service proxy and the cluster's setup make: list a
collection, read one object (a Secret's or ConfigMap's data), create one unless it exists,
merge-patch one (or its status), and ask for a ServiceAccount token.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

Manifest = dict[str, Any]
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@dataclass(frozen=True)
class TlsClient:
    """File names of the cluster's CA and a client certificate with its key."""

    ca: str
    certificate: str
    key: str


#: How often a request the API server throttled (429) is sent again before its answer stands.
THROTTLED_ATTEMPTS = 6


class RetryingThrottled(httpx.AsyncBaseTransport):
    """Sends a request again after the API server's `Retry-After` when it answers 429, as
    client-go does: API Priority and Fairness sheds load on a busy machine, and the kubelet
    waits it out instead of failing (a node sync once failed a whole run on one 429)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(THROTTLED_ATTEMPTS - 1):
            response = await self.inner.handle_async_request(request)
            if response.status_code != 429:
                return response
            await response.aclose()
            retry_after = response.headers.get("Retry-After", "1")
            await asyncio.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, 5.0))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Api:
    def __init__(self, url: str, tls: TlsClient) -> None:
        context = ssl.create_default_context(cafile=tls.ca)
        context.load_cert_chain(tls.certificate, tls.key)
        transport = RetryingThrottled(httpx.AsyncHTTPTransport(verify=context))
        self.http = httpx.AsyncClient(base_url=url, transport=transport, timeout=30)

    async def items(self, path: str, **params: str) -> list[Manifest]:
        """A collection's items (`params`: a field or label selector)."""
        response = await self.http.get(path, params=params)
        response.raise_for_status()
        items: list[Manifest] = response.json().get("items") or []
        return items

    async def get(self, path: str) -> Manifest | None:
        response = await self.http.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: Manifest = response.json()
        return found

    async def ensure(self, collection: str, body: Manifest) -> None:
        """Create the object unless one of its name exists already (409)."""
        response = await self.http.post(collection, json=body)
        if response.status_code != 409:
            response.raise_for_status()

    async def merge_patch(self, path: str, body: Manifest) -> httpx.Response:
        """The server's answer, for the caller to judge (a 404 may mean "create it" or "gone")."""
        return await self.http.patch(path, json=body, headers=MERGE_PATCH)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = await self.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            return None
        decoded = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        return {**decoded, **(secret.get("stringData") or {})}

    async def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        config_map = await self.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        return None if config_map is None else dict(config_map.get("data") or {})

    async def service_account_token(
        self, namespace: str, account: str, pod: str, pod_uid: str, audience: str | None
    ) -> str:
        """A token bound to the Pod (TokenRequest), as the kubelet asks for a projected volume."""
        spec: Manifest = {
            "expirationSeconds": 3607,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": pod_uid},
        }
        if audience:
            spec["audiences"] = [audience]
        response = await self.http.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        if response.status_code == 404:
            raise LookupError(f'serviceaccount "{account}" not found')
        response.raise_for_status()
        token: str = response.json()["status"]["token"]
        return token

    async def close(self) -> None:
        await self.http.aclose()
