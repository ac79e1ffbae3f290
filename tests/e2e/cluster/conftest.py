"""One real control plane for the module: the scenarios follow one installation's life."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.cluster.cluster import Cluster, running_cluster


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the cluster needs root (a mount and a network namespace for each Pod, routes for its addresses)"
    for program, why in (("unshare", "util-linux's unshare"), ("ip", "iproute2's ip"), ("go", "Go 1.26")):
        if shutil.which(program) is None:
            return f"the cluster needs {why}"
    return None


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = _missing()
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
