"""One local cluster for the whole module: the scenarios follow one installation's life."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.local.cluster import LocalCluster, local_cluster


def _can_run() -> str | None:
    import os

    if os.geteuid() != 0:
        return "the local cluster needs root (mount namespaces for each Pod)"
    if shutil.which("unshare") is None:
        return "the local cluster needs util-linux's unshare"
    return None


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    reason = _can_run()
    if reason:
        pytest.skip(reason)
    with local_cluster() as running:
        yield running
