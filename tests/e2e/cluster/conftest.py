"""One real control plane for the module: the scenarios follow one installation's life."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.cluster.cluster import Cluster, missing_requirement, running_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = missing_requirement()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with running_cluster() as running:
        print(
            f"\ne2e: real control plane: kube-apiserver {running.server_version()} (etcd, kube-controller-manager, "
            f"kube-scheduler built from source), ready in {running.started_seconds:.1f} s"
        )
        yield running
