"""One pass, without kopf: the API calls it makes and their order (as Argo's controller tests assert
the expected actions), read from the emulator's log of every call the real client sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcorp_operator.cluster import Cluster, Conflict, load_api_client
from ragcorp_operator.reconciling import CONFLICT_RETRIES, Memory, reconcile
from ragcorp_operator.rollout import Event
from tests.support.kube_emulator import OPERATOR_TOKEN, ApiServer
from tests.support.operator_cluster import NAMESPACE, SPEC, ClusterHelper, secrets

WRITES = ("create", "update", "patch", "delete")


def operator_writes(api_server: ApiServer, since: int = 0) -> list[tuple[str, str]]:
    """(verb, resource[/subresource]) of each write the operator sent, in order."""
    return [(c.verb, c.resource) for c in api_server.calls[since:] if c.token == OPERATOR_TOKEN and c.verb in WRITES]


@pytest.fixture
def operator_cluster(kubeconfig: Path) -> Cluster:
    return Cluster(load_api_client())


def test_a_pass_writes_the_status_before_any_child(
    api_server: ApiServer, helper: ClusterHelper, operator_cluster: Cluster
) -> None:
    """Children never run ahead of a status that could be lost: the first write of a pass is the
    status, and every child write comes after it."""
    secrets(helper)
    helper.apply_resource("rag", SPEC)
    events: list[Event] = []
    result = reconcile(operator_cluster, NAMESPACE, "rag", Memory(), True, lambda _, event: events.append(event))
    writes = operator_writes(api_server)
    assert result.outcome == "ok"
    assert writes[0] == ("patch", "ragcorpdeployments/status"), writes
    children = [resource for verb, resource in writes[1:] if verb in ("create", "patch")]
    assert {"services", "configmaps", "jobs"} <= set(children), writes  # Migrating: no Deployment yet
    assert "ragcorpdeployments/status" not in children, "one status write per pass"
    assert any(e.reason == "RolloutStarted" for e in events)


def test_a_status_write_that_keeps_conflicting_writes_no_child(
    api_server: ApiServer, helper: ClusterHelper, operator_cluster: Cluster
) -> None:
    """A stale read loses the race (409) and is read again; after CONFLICT_RETRIES the pass gives
    up (kopf's daemon tries again later) having created nothing from the stale state."""
    secrets(helper)
    helper.apply_resource("rag", SPEC)
    api_server.refuse_status_writes = True
    since = len(api_server.calls)
    with pytest.raises(Conflict):
        reconcile(operator_cluster, NAMESPACE, "rag", Memory(), True, lambda _, __: None)
    writes = operator_writes(api_server, since)
    assert writes == [("patch", "ragcorpdeployments/status")] * CONFLICT_RETRIES
    api_server.refuse_status_writes = False
    assert reconcile(operator_cluster, NAMESPACE, "rag", Memory(), True, lambda _, __: None).outcome == "ok"
    assert helper.get("Job", "rag-migrate-1") is not None


def test_an_unchanged_pass_writes_nothing(
    api_server: ApiServer, helper: ClusterHelper, operator_cluster: Cluster
) -> None:
    """A pass woken with nothing new (an event of our own write) reads and writes nothing back."""
    secrets(helper)
    helper.apply_resource("rag", SPEC)
    memory = Memory()
    reconcile(operator_cluster, NAMESPACE, "rag", memory, True, lambda _, __: None)
    reconcile(operator_cluster, NAMESPACE, "rag", memory, False, lambda _, __: None)  # settles the status
    since = len(api_server.calls)
    reconcile(operator_cluster, NAMESPACE, "rag", memory, False, lambda _, __: None)
    assert operator_writes(api_server, since) == []
