"""The operator's client of the API server: how it writes children, against the emulated API server.

Server-side apply's semantics are proven on the real API server (tests/e2e/cluster, scenario 10);
here, fast, the client's own rules: what it leaves out, and that a fenced pass writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragcorp_operator.cluster import Cluster, Fenced, load_api_client


def config_map(data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rag", "namespace": "default"}, "data": data}


def test_a_key_the_operator_stops_setting_leaves_the_child(kubeconfig: Path) -> None:
    cluster = Cluster(load_api_client())
    assert cluster.apply(config_map({"A": "1", "B": "2"})) == "created"
    assert cluster.apply(config_map({"A": "1", "B": "2"})) == "unchanged"
    assert cluster.apply(config_map({"A": "1"})) == "updated"
    assert (cluster.get("ConfigMap", "default", "rag") or {})["data"] == {"A": "1"}


def test_a_fenced_pass_sends_no_write_but_still_reads(kubeconfig: Path) -> None:
    told_to_stop = [False]
    cluster = Cluster(load_api_client()).fenced(lambda: told_to_stop[0])
    cluster.apply(config_map({"A": "1"}))
    told_to_stop[0] = True
    with pytest.raises(Fenced):
        cluster.apply(config_map({"A": "2"}))
    with pytest.raises(Fenced):
        cluster.delete("ConfigMap", "default", "rag")
    assert (cluster.get("ConfigMap", "default", "rag") or {})["data"] == {"A": "1"}
