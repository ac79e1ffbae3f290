"""kube-proxy and cluster DNS for the node, from the API server's Services and EndpointSlices.

Each Service's cluster IP (allocated by the API server from the service range,
which is routed to this host) gets a listener per port; each new connection goes
to one endpoint that the EndpointSlice controller marked ready, in turn, on the
port the slice names for the Service's port. That is kube-proxy's contract: a Pod
takes traffic once it is ready and stops taking new connections once it is not
ready or terminating. DNS is a hosts file bound at every Pod's `/etc/hosts`
(`<service>.<namespace>.svc.cluster.local` to the cluster IP), rewritten in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.cluster.api import Api

log = logging.getLogger(__name__)
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass
class Listener:
    ip: str
    port: dict[str, Any]
    server: asyncio.Server


@dataclass
class ServiceRoutes:
    namespace: str
    name: str
    ip: str
    ports: list[dict[str, Any]]
    listeners: list[Listener] = field(default_factory=list)
    #: (address, port number by port name) of every ready endpoint, from the Service's slices.
    endpoints: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    turn: int = 0


def ready_endpoints(slices: list[dict[str, Any]]) -> list[tuple[str, dict[str, int]]]:
    found = []
    for endpoint_slice in slices:
        ports = {p.get("name") or "": int(p["port"]) for p in endpoint_slice.get("ports") or [] if "port" in p}
        for endpoint in endpoint_slice.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            if conditions.get("ready", True) and not conditions.get("terminating", False):
                found.extend((address, ports) for address in endpoint["addresses"])
    return found


class ServiceProxy:
    def __init__(self, api: Api, hosts_file: Path) -> None:
        self.api = api
        self.hosts_file = hosts_file
        self.routes: dict[tuple[str, str], ServiceRoutes] = {}
        #: What the last sync read: every Service, and the EndpointSlices of each (namespace, name).
        self.services: list[dict[str, Any]] = []
        self.slices: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._write_hosts()

    async def sync(self) -> None:
        services = await self.api.items("/api/v1/services")
        by_service: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for endpoint_slice in await self.api.items("/apis/discovery.k8s.io/v1/endpointslices"):
            meta = endpoint_slice["metadata"]
            owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
            if owner:
                by_service.setdefault((meta["namespace"], owner), []).append(endpoint_slice)
        self.services, self.slices = services, by_service
        seen = set()
        changed = False
        for service in services:
            meta, spec = service["metadata"], service.get("spec") or {}
            ip = spec.get("clusterIP")
            if not ip or ip == "None":
                continue
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            ports = [p for p in spec.get("ports") or [] if p.get("protocol", "TCP") == "TCP"]
            routes = self.routes.get(key)
            if routes is None or routes.ip != ip or routes.ports != ports:
                if routes is not None:
                    routes_close(routes)
                routes = self.routes[key] = ServiceRoutes(key[0], key[1], ip, ports)
                for port in ports:
                    server = await asyncio.start_server(
                        lambda r, w, s=routes, p=port: self._connect(r, w, s, p), ip, int(port["port"])
                    )
                    routes.listeners.append(Listener(ip, port, server))
                changed = True
            routes.endpoints = ready_endpoints(by_service.get(key, []))
        for key in set(self.routes) - seen:
            routes_close(self.routes.pop(key))
            changed = True
        if changed:
            self._write_hosts()

    async def _connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, routes: ServiceRoutes, port: dict[str, Any]
    ) -> None:
        if not routes.endpoints:
            writer.close()  # no ready endpoint: the connection is refused, as kube-proxy's REJECT does
            return
        address, numbers = routes.endpoints[routes.turn % len(routes.endpoints)]
        routes.turn += 1
        target = numbers.get(port.get("name") or "")
        if target is None:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(address, target)
        except OSError:
            writer.close()
            return
        await join(reader, writer, upstream_reader, upstream_writer)

    def address(self, namespace: str, name: str) -> str:
        return self.routes[(namespace, name)].ip

    def _write_hosts(self) -> None:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for (namespace, name), routes in sorted(self.routes.items()):
            lines.append(f"{routes.ip}\t{name}.{namespace}.svc.cluster.local {name}.{namespace}.svc {name}.{namespace}")
        # Rewritten in place: every Pod has this very file (inode) bound at /etc/hosts.
        with self.hosts_file.open("w") as handle:
            handle.write("\n".join(lines) + "\n")

    def close(self) -> None:
        for routes in self.routes.values():
            routes_close(routes)


def routes_close(routes: ServiceRoutes) -> None:
    for listener in routes.listeners:
        listener.server.close()


async def forward_to_unix(address: str, port: int, socket_path: Path) -> asyncio.Server:
    """A TCP address that leads to a Unix socket (the embedded database, as an endpoint)."""

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(str(socket_path))
        await join(reader, writer, upstream_reader, upstream_writer)

    return await asyncio.start_server(connect, address, port)


async def join(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    try:
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
    finally:
        for end in (writer, upstream_writer):
            with contextlib.suppress(Exception):
                end.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction; pass a clean end on as a half-close, an error as a close."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
