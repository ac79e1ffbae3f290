"""The local cluster's controllers talk to the API server over HTTP, as the real ones do."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

Manifest = dict[str, Any]

PATHS = {
    "Pod": "/api/v1",
    "Service": "/api/v1",
    "ConfigMap": "/api/v1",
    "Secret": "/api/v1",
    "Deployment": "/apis/apps/v1",
    "Job": "/apis/batch/v1",
}
PLURALS = {"Pod": "pods", "Service": "services", "ConfigMap": "configmaps", "Secret": "secrets"}


@dataclass(frozen=True)
class TlsClient:
    """File names of the cluster's CA and a client certificate with its key."""

    ca: str
    certificate: str
    key: str


def path(kind: str, namespace: str, name: str | None = None) -> str:
    base = f"{PATHS[kind]}/namespaces/{namespace}/{PLURALS.get(kind, kind.lower() + 's')}"
    return f"{base}/{name}" if name else base


class Api:
    """Just what controllers need: list, get, create, merge-patch (object or status), delete."""

    def __init__(self, url: str, token: str = "local-cluster", tls: TlsClient | None = None) -> None:
        """Bearer `token` on the emulator; on a real API server, the client certificate `tls` names."""
        if tls is None:
            self.http = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        else:
            context = ssl.create_default_context(cafile=tls.ca)
            context.load_cert_chain(tls.certificate, tls.key)
            self.http = httpx.AsyncClient(base_url=url, verify=context, timeout=30)

    async def list(self, kind: str, namespace: str) -> list[Manifest]:
        response = await self.http.get(path(kind, namespace))
        response.raise_for_status()
        items: list[Manifest] = response.json().get("items") or []
        return items

    async def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        response = await self.http.get(path(kind, namespace, name))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: Manifest = response.json()
        return found

    async def create(self, manifest: Manifest) -> None:
        meta = manifest["metadata"]
        response = await self.http.post(path(manifest["kind"], meta["namespace"]), json=manifest)
        response.raise_for_status()

    async def patch(self, kind: str, namespace: str, name: str, body: Manifest, status: bool = False) -> None:
        suffix = "/status" if status else ""
        response = await self.http.patch(
            path(kind, namespace, name) + suffix,
            json=body,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code != 404:  # gone meanwhile: nothing left to update
            response.raise_for_status()

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        response = await self.http.delete(path(kind, namespace, name))
        if response.status_code != 404:
            response.raise_for_status()

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = await self.get("Secret", namespace, name)
        if secret is None:
            return None
        decoded = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        return {**decoded, **(secret.get("stringData") or {})}

    async def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        config_map = await self.get("ConfigMap", namespace, name)
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
