"""The operator under test: real kopf, in-process, against kmock's emulator on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import kmock
import pytest
from kopf.testing import KopfRunner

from tests.support.kube_emulator import (
    HELPER_TOKEN,
    MONITORING,
    RESOURCES,
    ApiServer,
    running_api_server,
    write_kubeconfig,
)
from tests.support.operator_cluster import ClusterHelper, running_operator

#: The operator under test resyncs rarely (tests see event-driven passes) and serves no metrics
#: port unless a test asks for one; the machine's own environment wins.
OPERATOR_ENVIRONMENT = (("RAGCORP_RESYNC_SECONDS", "300"), ("RAGCORP_OPERATOR_METRICS_PORT", "0"))


@pytest.fixture(autouse=True, scope="session")
def operator_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in OPERATOR_ENVIRONMENT:
            if name not in os.environ:
                patch.setenv(name, value)
        yield


@pytest.fixture
def with_monitoring() -> bool:
    return True


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


@pytest.fixture
def operator(kubeconfig: Path) -> Iterator[KopfRunner]:
    with running_operator() as runner:
        yield runner
