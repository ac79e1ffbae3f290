"""The operator under test: real kopf, in-process, against kmock's emulator on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import kmock
import pytest
import yaml
from kopf.testing import KopfRunner

from tests.operator.cluster_helper import ClusterHelper
from tests.operator.emulator import ApiServer

os.environ.setdefault("RAGCORP_RECONCILE_INTERVAL", "0.3")
os.environ.setdefault("RAGCORP_OPERATOR_METRICS_PORT", "0")

ALL_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
RESOURCES = {
    "ragcorp.dev/v1alpha1/ragcorpdeployments": kmock.ResourceInfo(
        kind="RagCorpDeployment",
        namespaced=True,
        shortnames={"rcd"},
        subresources={"status", "scale"},
        verbs=ALL_VERBS,
    ),
    # kopf waits for the namespaces resource to exist even when it watches cluster-wide.
    "v1/namespaces": kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs={"list", "watch", "get"}),
    "v1/configmaps": kmock.ResourceInfo(kind="ConfigMap", namespaced=True),
    "v1/secrets": kmock.ResourceInfo(kind="Secret", namespaced=True),
    "v1/services": kmock.ResourceInfo(kind="Service", namespaced=True),
    "v1/pods": kmock.ResourceInfo(kind="Pod", namespaced=True),
    "v1/events": kmock.ResourceInfo(kind="Event", namespaced=True),
    "apps/v1/deployments": kmock.ResourceInfo(
        kind="Deployment", namespaced=True, subresources={"status"}, verbs=ALL_VERBS
    ),
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", namespaced=True, subresources={"status"}, verbs=ALL_VERBS),
    "autoscaling/v2/horizontalpodautoscalers": kmock.ResourceInfo(kind="HorizontalPodAutoscaler", namespaced=True),
    "policy/v1/poddisruptionbudgets": kmock.ResourceInfo(kind="PodDisruptionBudget", namespaced=True),
    "coordination.k8s.io/v1/leases": kmock.ResourceInfo(kind="Lease", namespaced=True),
}
MONITORING = {
    "monitoring.coreos.com/v1/servicemonitors": kmock.ResourceInfo(kind="ServiceMonitor", namespaced=True),
    "monitoring.coreos.com/v1/prometheusrules": kmock.ResourceInfo(kind="PrometheusRule", namespaced=True),
}


@pytest.fixture
def with_monitoring() -> bool:
    return True


#: The operator authenticates with this token, the test helper with its own, so the emulator's
#: call log tells the operator's calls apart.
OPERATOR_TOKEN = "operator-token"
HELPER_TOKEN = "helper-token"


@contextlib.contextmanager
def running_api_server(resources: dict[str, kmock.ResourceInfo]) -> Iterator[ApiServer]:
    """The emulator on its own event loop in a thread, so tests and the operator can block freely."""
    started = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    running: dict[str, ApiServer] = {}

    async def serve() -> None:
        stop["event"] = asyncio.Event()
        async with ApiServer() as server, kmock.Server(server):
            for key, info in resources.items():
                server.resources[key] = info
            running["server"] = server
            started.set()
            await stop["event"].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(timeout=30), "the Kubernetes emulator did not start"
    try:
        yield running["server"]
    finally:
        loop.call_soon_threadsafe(stop["event"].set)
        thread.join(timeout=30)
        loop.close()


@pytest.fixture
def extra_resources() -> dict[str, kmock.ResourceInfo]:
    return {}


@pytest.fixture
def api_server(with_monitoring: bool, extra_resources: dict[str, kmock.ResourceInfo]) -> Iterator[ApiServer]:
    with running_api_server({**RESOURCES, **(MONITORING if with_monitoring else {}), **extra_resources}) as server:
        yield server


@pytest.fixture
def api_url(api_server: ApiServer) -> str:
    return str(api_server.url).rstrip("/")


def write_kubeconfig(path: Path, api_url: str) -> Path:
    """A kubeconfig pointing at the emulator: the operator connects exactly as it would to a cluster."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "emulator",
                "clusters": [{"name": "emulator", "cluster": {"server": api_url}}],
                "users": [{"name": "operator", "user": {"token": OPERATOR_TOKEN}}],
                "contexts": [
                    {"name": "emulator", "context": {"cluster": "emulator", "user": "operator", "namespace": "default"}}
                ],
            }
        )
    )
    return path


@pytest.fixture
def kubeconfig(api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_kubeconfig(tmp_path / "kubeconfig", api_url)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


@pytest.fixture
def helper(kubeconfig: Path) -> ClusterHelper:
    from ragcorp_operator.cluster import Cluster, load_api_client

    api_client = load_api_client()
    api_client.configuration.refresh_api_key_hook = None  # it would restore the kubeconfig's token
    api_client.configuration.api_key["BearerToken"] = f"Bearer {HELPER_TOKEN}"
    return ClusterHelper(Cluster(api_client))


@contextlib.contextmanager
def running_operator(peering: str | None = None) -> Iterator[KopfRunner]:
    """The real kopf runtime with our handlers, in a background thread (kopf's KopfRunner).

    Standalone unless `peering` names a ClusterKopfPeering, as the Helm chart's replicas run.
    """
    import kopf

    from ragcorp_operator import handlers

    handlers._cluster = None  # connect afresh, through this test's kubeconfig
    mode = ["--peering", peering] if peering else ["--standalone"]
    with KopfRunner(["run", *mode, "--all-namespaces"], registry=kopf.get_default_registry()) as runner:
        yield runner
    assert runner.exception is None, runner.output


@pytest.fixture
def operator(kubeconfig: Path) -> Iterator[KopfRunner]:
    with running_operator() as runner:
        yield runner
