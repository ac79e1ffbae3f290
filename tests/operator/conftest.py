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

RESOURCES = {
    "ragcorp.dev/v1alpha1/ragcorpdeployments": kmock.ResourceInfo(
        kind="RagCorpDeployment",
        namespaced=True,
        shortnames={"rcd"},
        subresources={"status", "scale"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    ),
    # kopf waits for the namespaces resource to exist even when it watches cluster-wide.
    "v1/namespaces": kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs={"list", "watch", "get"}),
    "v1/configmaps": kmock.ResourceInfo(kind="ConfigMap", namespaced=True),
    "v1/secrets": kmock.ResourceInfo(kind="Secret", namespaced=True),
    "v1/services": kmock.ResourceInfo(kind="Service", namespaced=True),
    "v1/pods": kmock.ResourceInfo(kind="Pod", namespaced=True),
    "v1/events": kmock.ResourceInfo(kind="Event", namespaced=True),
    "apps/v1/deployments": kmock.ResourceInfo(kind="Deployment", namespaced=True, subresources={"status"}),
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", namespaced=True, subresources={"status"}),
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


@contextlib.contextmanager
def running_api_server(resources: dict[str, kmock.ResourceInfo]) -> Iterator[str]:
    """The emulator on its own event loop in a thread, so tests and the operator can block freely."""
    started = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    url: dict[str, str] = {}

    async def serve() -> None:
        stop["event"] = asyncio.Event()
        async with ApiServer() as server, kmock.Server(server):
            for key, info in resources.items():
                server.resources[key] = info
            url["value"] = str(server.url).rstrip("/")
            started.set()
            await stop["event"].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(timeout=30), "the Kubernetes emulator did not start"
    try:
        yield url["value"]
    finally:
        loop.call_soon_threadsafe(stop["event"].set)
        thread.join(timeout=30)
        loop.close()


@pytest.fixture
def api_url(with_monitoring: bool) -> Iterator[str]:
    with running_api_server({**RESOURCES, **(MONITORING if with_monitoring else {})}) as url:
        yield url


@pytest.fixture
def kubeconfig(api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig pointing at the emulator: the operator connects exactly as it would to a cluster."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "emulator",
                "clusters": [{"name": "emulator", "cluster": {"server": api_url}}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
                "contexts": [
                    {"name": "emulator", "context": {"cluster": "emulator", "user": "tester", "namespace": "default"}}
                ],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


@pytest.fixture
def helper(kubeconfig: Path) -> ClusterHelper:
    from ragcorp_operator.cluster import Cluster, load_api_client

    return ClusterHelper(Cluster(load_api_client()))


@contextlib.contextmanager
def running_operator() -> Iterator[KopfRunner]:
    """The real kopf runtime with our handlers, in a background thread (kopf's KopfRunner)."""
    import kopf

    from ragcorp_operator import handlers

    handlers._cluster = None  # connect afresh, through this test's kubeconfig
    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=kopf.get_default_registry()) as runner:
        yield runner
    assert runner.exception is None, runner.output


@pytest.fixture
def operator(kubeconfig: Path) -> Iterator[KopfRunner]:
    with running_operator() as runner:
        yield runner
