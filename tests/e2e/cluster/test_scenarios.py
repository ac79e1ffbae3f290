"""The operator on a real Kubernetes control plane: one installation's life, as a platform team lives it.

The CRD is applied with kubectl, the chart installed with Helm, the operator runs as
the chart's two peered Pods with the chart's ServiceAccount (the API server enforces
its RBAC), and Deployments, ReplicaSets, Jobs, EndpointSlices and garbage collection
are the real controllers'. Every Job runs its real command, every replica is a real
`ragcorp-service serve`, every request goes through a Service. Each scenario prints
one `e2e:` line with its figures.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.cluster.cluster import Cluster
from tests.e2e.cluster.control_plane import NODE_ADDRESS
from tests.e2e.cluster.images import BASE_REVISION, REPOSITORY, V2_MIGRATION, V3_MIGRATION
from tests.support.webhook_receiver import receiving

BASE, V2, V3 = BASE_REVISION, V2_MIGRATION.revision, V3_MIGRATION.revision  # the schema v1, v2 and v3 leave

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = yaml.safe_load((ROOT / "crds" / "examples" / "minimal.yaml").read_text())
NAME = MINIMAL["metadata"]["name"]
DOCUMENT = {
    "title": "Tides",
    "text": "The moon raises two tides a day. Spring tides come when the sun and moon line up.",
    "metadata": {"team": "ocean"},
}
COLOR_LABEL = "ragcorp.dev/color"
#: Generous bounds: they only decide how long a failing scenario takes on a loaded machine.
STEP_TIMEOUT = float(os.environ.get("E2E_STEP_TIMEOUT", "240"))


def image(tag: str) -> str:
    return f"{REPOSITORY}:{tag}"


def eventually(check: Callable[[], Any], timeout: float = STEP_TIMEOUT, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:.0f} s: {check}")
        time.sleep(interval)


def status(cluster: Cluster) -> dict[str, Any]:
    found = cluster.get("rcd", NAME) or {}
    return dict(found.get("status") or {})


def condition(cluster: Cluster, kind: str) -> dict[str, Any]:
    return next((c for c in status(cluster).get("conditions") or [] if c["type"] == kind), {})


def apply_spec(cluster: Cluster, spec: dict[str, Any]) -> None:
    manifest = {**MINIMAL, "spec": spec}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def spec_with(**changes: Any) -> dict[str, Any]:
    spec = json.loads(json.dumps(MINIMAL["spec"]))
    for path, value in changes.items():
        target = spec
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return spec


def active_color(cluster: Cluster) -> str | None:
    service = cluster.get("service", NAME) or {}
    return (service.get("spec") or {}).get("selector", {}).get(COLOR_LABEL)


def ready_endpoints(cluster: Cluster, service: str) -> int:
    slices = cluster.items("endpointslices", "-l", f"kubernetes.io/service-name={service}")
    return sum(
        1
        for endpoint_slice in slices
        for endpoint in endpoint_slice.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
    )


def job_complete(cluster: Cluster, name: str) -> bool:
    job = cluster.get("job", name) or {}
    return any(c.get("type") == "Complete" for c in (job.get("status") or {}).get("conditions") or [])


def idle_with(cluster: Cluster, wanted_image: str) -> Callable[[], bool]:
    def idle() -> bool:
        now = status(cluster)
        ready = next((c for c in now.get("conditions") or [] if c["type"] == "Ready"), {})
        return now.get("activeImage") == wanted_image and now.get("phase") == "Idle" and ready.get("status") == "True"

    return idle


def version_behind(cluster: Cluster, service: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{cluster.service_url(service)}/version", timeout=10).json()
    return body


@dataclass
class Traffic:
    """A client sending searches through a Service at a steady pace, counting what failed.

    Paced, not flat out: the service limits each client to `rateLimitRps` (20/s per replica by
    default), and a faster client would count the limiter's 429s as lost requests."""

    url: str
    mode: str = "hybrid"
    per_second: float = 10.0
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            next_at = time.monotonic()
            while not self.stop.wait(max(0.0, next_at - time.monotonic())):
                next_at = max(next_at, time.monotonic()) + 1 / self.per_second
                try:
                    body = {"query": "what raises tides", "top_k": 3, "mode": self.mode}
                    response = http.post("/v1/search", json=body)
                    if response.status_code != 200 or not response.json()["results"]:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                self.sent += 1


@contextmanager
def traffic(cluster: Cluster, service: str = NAME, mode: str = "hybrid") -> Iterator[Traffic]:
    load = Traffic(cluster.service_url(service), mode)
    thread = threading.Thread(target=load.run, daemon=True)
    thread.start()
    try:
        yield load
    finally:
        load.stop.set()
        thread.join(timeout=60)


@dataclass
class Timeline:
    """When each watched fact first held, and the active colour at each poll."""

    seen: dict[str, float] = field(default_factory=dict)
    colors: list[str | None] = field(default_factory=list)
    samples: dict[str, list[Any]] = field(default_factory=dict)

    def served(self) -> list[str | None]:
        changes: list[str | None] = []
        for color in self.colors:
            if not changes or changes[-1] != color:
                changes.append(color)
        return changes


def follow(
    cluster: Cluster,
    done: Callable[[], bool],
    watch: dict[str, Callable[[], bool]] | None = None,
    sample: dict[str, Callable[[], Any]] | None = None,
    timeout: float = STEP_TIMEOUT,
) -> Timeline:
    """Poll until `done()`; meanwhile note when each `watch` first held, and record each `sample`."""
    timeline = Timeline()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, predicate in (watch or {}).items():
            if name not in timeline.seen and predicate():
                timeline.seen[name] = time.monotonic()
        for name, measure in (sample or {}).items():
            timeline.samples.setdefault(name, []).append(measure())
        timeline.colors.append(active_color(cluster))
        if done():
            return timeline
        time.sleep(0.2)
    raise AssertionError(f"not done within {timeout:.0f} s; status: {json.dumps(status(cluster))[:2000]}")


def test_1_a_platform_team_installs_the_operator_and_the_minimal_example_becomes_ready(cluster: Cluster) -> None:
    started = time.monotonic()
    cluster.kubectl("apply", "-f", str(ROOT / "crds" / "ragcorpdeployments.ragcorp.dev.yaml"))
    cluster.helm("install", "ragcorp", str(ROOT / "charts" / "ragcorp-operator"), "--wait", "--timeout=5m")
    cluster.kubectl(
        "create", "secret", "generic", "ragcorp-database", f"--from-literal=DATABASE_URL={cluster.database_url}"
    )
    cluster.kubectl("apply", "-f", str(ROOT / "crds" / "examples" / "minimal.yaml"))
    cluster.kubectl("wait", "--for=condition=Ready", f"rcd/{NAME}", f"--timeout={STEP_TIMEOUT:.0f}s")
    ready_after = time.monotonic() - started
    now = status(cluster)
    assert now["schemaRevision"] == BASE and now["activeImage"] == MINIMAL["spec"]["image"]
    operators = cluster.items("pods", "-l", "app.kubernetes.io/name=ragcorp-operator")
    assert len(operators) == 2 and all(p["spec"]["serviceAccountName"].startswith("ragcorp") for p in operators)
    served = cluster.items("pods", "-l", f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=api")
    jobs = cluster.items("pods", "-l", f"app.kubernetes.io/instance={NAME},ragcorp.dev/job")

    def token_volumes(pod: dict[str, Any]) -> list[str]:  # what the ServiceAccount admission plugin adds
        return [v["name"] for v in pod["spec"].get("volumes") or [] if v["name"].startswith("kube-api-access-")]

    assert all(token_volumes(p) for p in operators), "the operator talks to the API server with its token"
    assert served and jobs and not any(token_volumes(p) for p in [*served, *jobs]), "the service's Pods have none"
    assert {c["name"] for p in jobs for c in p["spec"]["containers"]} <= {"migrate", "smoke"}

    active = cluster.service_url(NAME)
    stored = httpx.post(f"{active}/v1/documents", json=DOCUMENT, timeout=60)
    assert stored.status_code == 201, stored.text
    answer = httpx.post(f"{active}/v1/ask", json={"question": "What raises tides?"}, timeout=60).json()
    assert answer["citations"] and answer["citations"][0]["title"] == "Tides"
    print(
        f"\ne2e: install: CRD (kubectl), chart (helm install, 2 operator Pods on the chart's ServiceAccount), "
        f"minimal example Ready in {ready_after:.1f} s; schema {now['schemaRevision']}; "
        f"cited answer through the Service; no ServiceAccount token in its {len(served)} serving and "
        f"{len(jobs)} Job Pods (the operator's have theirs)"
    )


def test_2_rollout_v1_to_v2_under_traffic_loses_no_request(cluster: Cluster) -> None:
    backups = cluster.root / "pvcs" / "default" / "ragcorp-backups"
    backups.mkdir(parents=True, exist_ok=True)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(_backup_volume(backups)))
    spec = spec_with(
        image=image("v2"),
        migrations__backup={"enabled": True, "pvcName": "ragcorp-backups"},
        strategy__blueGreen={"scaleDownDelaySeconds": 5},
    )
    with traffic(cluster) as load:
        apply_spec(cluster, spec)
        revision = eventually(lambda: status(cluster).get("targetImage") == image("v2") and status(cluster)["revision"])
        timeline = follow(
            cluster,
            done=lambda: idle_with(cluster, image("v2"))() and not cluster.items("pods", "-l", f"{COLOR_LABEL}=blue"),
            watch={
                "smoke complete": lambda: job_complete(cluster, f"{NAME}-smoke-{revision}"),
                "switched": lambda: active_color(cluster) == "green",
            },
        )
    assert load.failures == [], load.failures[:5]
    assert load.sent > 0
    assert timeline.served() == ["blue", "green"]
    now = status(cluster)
    assert now["schemaRevision"] == V2 and now["baseSchemaRevision"] == BASE
    assert version_behind(cluster, NAME)["version"] == "v2"
    dumps = sorted(backups.glob(f"{NAME}-rev{revision}-*.dump"))
    assert len(dumps) == 1, dumps
    assert len(cluster.starts(f"{NAME}-migrate-{revision}-")) == 1
    switch = timeline.seen["switched"] - timeline.seen["smoke complete"]
    print(
        f"\ne2e: rollout v1->v2: {load.sent} requests through the active Service, {len(load.failures)} failed; "
        f"switch {switch:.1f} s after the smoke Job completed; backup {dumps[0].stat().st_size} B on a bound PVC, "
        f"schema {BASE}->{V2}"
    )


def _backup_volume(directory: Path) -> dict[str, Any]:
    """A PersistentVolume on the node and the claim the backup Job mounts, bound by the real binder."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": "ragcorp-backups"},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "hostPath": {"path": str(directory)},
                    "claimRef": {"namespace": "default", "name": "ragcorp-backups"},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "ragcorp-backups", "namespace": "default"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "volumeName": "ragcorp-backups",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ],
    }


def test_3_a_failing_smoke_test_keeps_traffic_on_v2_and_downgrades(cluster: Cluster) -> None:
    spec = spec_with(
        image=image("v3"), migrations__downgradeOnAbort=True, strategy__blueGreen={"scaleDownDelaySeconds": 5}
    )
    with traffic(cluster) as load:
        apply_spec(cluster, spec)
        timeline = follow(
            cluster,
            done=lambda: (
                status(cluster).get("phase") == "Aborted"
                and not [
                    p
                    for p in cluster.items("pods", "-l", f"{COLOR_LABEL}=blue")
                    if p["spec"]["containers"][0]["image"] == image("v3")
                ]
            ),
            watch={f"migrated to {V3}": lambda: status(cluster).get("schemaRevision") == V3},
        )
    assert load.failures == [], load.failures[:5]
    assert timeline.served() == ["green"]
    degraded = condition(cluster, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "SmokeTestFailed")
    assert "/v1/ask answered 500" in degraded["message"]
    assert f"migrated to {V3}" in timeline.seen
    assert status(cluster)["schemaRevision"] == V2
    assert version_behind(cluster, NAME)["version"] == "v2"
    print(
        f"\ne2e: failed smoke test v3: {load.sent} requests, {len(load.failures)} failed, traffic on green (v2) "
        f"throughout; Degraded {degraded['reason']}; schema {V2}->{V3}->{V2}; v3 scaled down"
    )


def test_4_kubectl_ragcorp_rollback_downgrades_the_schema_and_keeps_the_documents(cluster: Cluster) -> None:
    apply_spec(cluster, spec_with(image=image("v2"), strategy__blueGreen={"scaleDownDelaySeconds": 5}))
    eventually(idle_with(cluster, image("v2")))
    assert condition(cluster, "Degraded")["status"] == "False"
    shown = cluster.kubectl("ragcorp", "status", NAME)
    assert image("v2") in shown
    with traffic(cluster) as load:
        cluster.kubectl("ragcorp", "rollback", NAME)
        timeline = follow(cluster, done=idle_with(cluster, MINIMAL["spec"]["image"]))
    assert load.failures == [], load.failures[:5]
    now = status(cluster)
    assert now["schemaRevision"] == BASE and now["heldImage"] == image("v2")
    assert version_behind(cluster, NAME)["version"] == "0.1.0"
    found = httpx.post(
        f"{cluster.service_url(NAME)}/v1/search", json={"query": "what raises tides", "mode": "keyword"}, timeout=30
    ).json()
    assert [r["title"] for r in found["results"]] == ["Tides"]
    print(
        f"\ne2e: kubectl ragcorp rollback to 0.1.0: schema {V2}->{BASE}, {load.sent} requests, "
        f"{len(load.failures)} failed, served by {' -> '.join(map(str, timeline.served()))}; the document is found"
    )


def leading_operator(cluster: Cluster) -> str:
    """The operator Pod kopf's peering lets act: the highest priority among live peers."""
    peering = cluster.get("clusterkopfpeering", "ragcorp-operator") or {}
    peers = {identity: info for identity, info in (peering.get("status") or {}).items() if info}
    return max(peers, key=lambda identity: peers[identity]["priority"])


def test_5_the_leading_operator_killed_during_the_migration_runs_it_once(cluster: Cluster) -> None:
    apply_spec(cluster, spec_with(image=image("v2.0.1"), strategy__blueGreen={"scaleDownDelaySeconds": 5}))
    revision = eventually(lambda: status(cluster).get("targetImage") == image("v2.0.1") and status(cluster)["revision"])
    job = f"{NAME}-migrate-{revision}"
    eventually(lambda: cluster.starts(f"{job}-"), interval=0.05)
    leader = leading_operator(cluster)
    pid = cluster.container_pid(leader)
    assert pid is not None
    assert not job_complete(cluster, job), "the migration finished before the operator was killed"
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    eventually(lambda: leading_operator(cluster) != leader or cluster.container_pid(leader) not in (None, pid))
    takeover = time.monotonic() - killed
    follow(cluster, done=idle_with(cluster, image("v2.0.1")))
    assert len(cluster.starts(f"{job}-")) == 1
    assert status(cluster)["schemaRevision"] == V2
    restarts = (cluster.get("pod", leader) or {})["status"]["containerStatuses"][0]["restartCount"]
    print(
        f"\ne2e: leading operator Pod killed (-9) during migration {job}: a peer took over in {takeover:.1f} s; "
        f"1 migration run; the kubelet restarted the killed container ({restarts} restart); rollout to v2.0.1 completed"
    )


SERVICE_SELECTOR = 'namespace="{{namespace}}",service="{{service}}"'
#: A team's checks beside the built-in gate: the preview must see keyword searches (measured three
#: times), and two dry-run checks a team is trying out: a p50 no real service meets, and no 5xx.
TEAM_CHECKS: list[dict[str, Any]] = [
    {
        "name": "preview-takes-searches",
        "query": f"sum(rate(ragcorp_http_requests_total{{{SERVICE_SELECTOR}}}[1m]))",
        "successCondition": "result > 0",
        "intervalSeconds": 10,
        "initialDelaySeconds": 15,
        "count": 3,
        "inconclusiveLimit": 3,
        "stages": ["prePromotion"],
    },
    {
        "name": "p50-under-a-microsecond",
        "query": (
            "histogram_quantile(0.5, sum by (le) "
            f"(rate(ragcorp_http_request_duration_seconds_bucket{{{SERVICE_SELECTOR}}}[1m])))"
        ),
        "successCondition": "result < 0.000001",
        "intervalSeconds": 10,
        "initialDelaySeconds": 15,
        "count": 1,
        "inconclusiveLimit": 3,
        "stages": ["prePromotion"],
        "dryRun": True,
    },
    {
        "name": "no-5xx",
        "query": f'sum(rate(ragcorp_http_requests_total{{{SERVICE_SELECTOR},status=~"5.."}}[1m])) or vector(0)',
        "successCondition": "result == 0",
        "intervalSeconds": 10,
        "initialDelaySeconds": 30,
        "count": 2,
        "stages": ["prePromotion"],
        "dryRun": True,
    },
]


def gate_spec(tag: str) -> dict[str, Any]:
    return spec_with(
        image=image(tag),
        strategy__blueGreen={
            "scaleDownDelaySeconds": 5,
            "metricGate": {"enabled": True, "windowSeconds": 60, "deadlineSeconds": 120, "maxErrorRate": 0.05},
            "analysis": {"metrics": TEAM_CHECKS},
        },
    )


def analysis_results(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """status.analysis's checks before the switch, by name."""
    [before_switch] = [run for run in status(cluster).get("analysis") or [] if run["stage"] == "prePromotion"]
    return {check["name"]: check for check in before_switch["metrics"]}


def preview_shows_the_new_colour(cluster: Cluster) -> bool:
    """The preview Service selects the colour being verified and has a ready endpoint: from now on a
    new connection to it reaches the new version (an open one stays where it was, as with kube-proxy)."""
    preview = cluster.get("service", f"{NAME}-preview") or {}
    color = (preview.get("spec") or {}).get("selector", {}).get(COLOR_LABEL)
    return color != active_color(cluster) and ready_endpoints(cluster, f"{NAME}-preview") > 0


def test_6_the_metric_gate_reads_real_prometheus(cluster: Cluster) -> None:
    """A healthy version has no 5xx series at all and promotes; one answering 5xx to real traffic aborts."""
    apply_spec(cluster, gate_spec("v2.0.2"))
    eventually(lambda: preview_shows_the_new_colour(cluster))
    with traffic(cluster, f"{NAME}-preview", mode="keyword") as healthy_load:
        follow(cluster, done=idle_with(cluster, image("v2.0.2")))
    assert healthy_load.sent > 0
    passed = analysis_results(cluster)
    searched, p50, no_5xx = (passed[check["name"]] for check in TEAM_CHECKS)
    assert (searched["phase"], searched["successful"], searched["dryRun"]) == ("Successful", 3, False), passed
    assert (p50["phase"], p50["dryRun"]) == ("Failed", True), "a dry-run failure is reported, not acted on"
    assert no_5xx["phase"] == "Successful", passed
    apply_spec(cluster, gate_spec("v4"))
    eventually(lambda: preview_shows_the_new_colour(cluster))
    with traffic(cluster, f"{NAME}-preview", mode="keyword") as bad_load:
        timeline = follow(cluster, done=lambda: status(cluster).get("phase") == "Aborted")
    degraded = condition(cluster, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "MetricGateFailed"), degraded
    assert status(cluster)["activeImage"] == image("v2.0.2")
    assert len(set(timeline.served())) == 1, "traffic never left v2.0.2"
    assert bad_load.failures, "v4 answered every keyword search: the regression is not in the image"
    errors_seen = analysis_results(cluster)["no-5xx"]
    assert (errors_seen["phase"], errors_seen["dryRun"]) == ("Failed", True), errors_seen
    apply_spec(cluster, spec_with(image=image("v2.0.2"), strategy__blueGreen={"scaleDownDelaySeconds": 5}))
    eventually(idle_with(cluster, image("v2.0.2")))
    print(
        f"\ne2e: metric gate on real Prometheus: v2.0.2 promoted ({healthy_load.sent} keyword searches on the "
        f"preview, {len(healthy_load.failures)} failed, no 5xx series; team checks: preview-takes-searches "
        f"{searched['successful']}/{searched['measured']} at {searched['lastValue']:.1f} req/s, dry-run p50 "
        f"{p50['lastValue'] * 1000:.1f} ms reported Failed, not acted on); v4 aborted as {degraded['reason']} "
        f"({bad_load.sent} keyword searches on the preview, {len(bad_load.failures)} answered 5xx; the dry-run "
        f"no-5xx check measured {errors_seen['lastValue']:.2f} 5xx/s); traffic never left v2.0.2"
    )


def test_7_a_rollout_never_serves_with_fewer_ready_pods_than_the_autoscaler_gave(cluster: Cluster) -> None:
    autoscaled = {"enabled": True, "minReplicas": 2, "maxReplicas": 6}
    quick = {"scaleDownDelaySeconds": 5}
    apply_spec(cluster, spec_with(image=image("v2.0.2"), autoscaling=autoscaled, strategy__blueGreen=quick))
    eventually(lambda: cluster.get("hpa", NAME) is not None and idle_with(cluster, image("v2.0.2"))())
    serving = active_color(cluster)
    cluster.kubectl("scale", f"deployment/{NAME}-{serving}", "--replicas=4")  # as the HPA would under load
    eventually(lambda: ready_endpoints(cluster, NAME) == 4)
    spec = spec_with(image=image("v2"), autoscaling=autoscaled, strategy__blueGreen=quick)
    with traffic(cluster) as load:
        apply_spec(cluster, spec)
        timeline = follow(
            cluster,
            done=lambda: idle_with(cluster, image("v2"))() and active_color(cluster) != serving,
            sample={"ready behind the active Service": lambda: ready_endpoints(cluster, NAME)},
        )
    fewest = min(timeline.samples["ready behind the active Service"])
    assert load.failures == [], load.failures[:5]
    assert fewest >= 4, timeline.samples
    new = cluster.get("deployment", f"{NAME}-{active_color(cluster)}") or {}
    assert new["spec"]["replicas"] == 4, "the new colour starts at the size the autoscaler gave the old one"
    print(
        f"\ne2e: autoscaled rollout v2.0.2->v2 with the active colour at 4 (scaled as an HPA would): "
        f"{load.sent} requests, {len(load.failures)} failed; never fewer than {fewest} ready Pods behind the active "
        f"Service; the new colour started at {new['spec']['replicas']}"
    )


def test_8_a_spec_edit_during_verification_with_canonicalised_quantities_does_not_abort(cluster: Cluster) -> None:
    quantities = {"requests": {"cpu": "1000m", "memory": "1024Mi"}, "limits": {"memory": "2048Mi"}}
    held = {"autoPromote": False, "scaleDownDelaySeconds": 5}
    apply_spec(cluster, spec_with(image=image("v2.0.1"), resources=quantities, strategy__blueGreen=held))
    revision = eventually(lambda: status(cluster).get("targetImage") == image("v2.0.1") and status(cluster)["revision"])
    smoke = f"{NAME}-smoke-{revision}"
    eventually(lambda: job_complete(cluster, smoke))
    stored = (cluster.get("job", smoke) or {})["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert stored["requests"] == {"cpu": "1", "memory": "1Gi"}, "the API server canonicalises quantities"
    edited = {**held, "scaleDownDelaySeconds": 6}
    apply_spec(cluster, spec_with(image=image("v2.0.1"), resources=quantities, strategy__blueGreen=edited))
    time.sleep(5)  # several passes of the operator over the edited spec and the canonicalised Job
    assert status(cluster)["phase"] == "Promoting", status(cluster).get("failure")  # verified, awaiting promotion
    cluster.kubectl("ragcorp", "promote", NAME)
    follow(cluster, done=idle_with(cluster, image("v2.0.1")))
    runs = len(cluster.starts(f"{smoke}-"))
    assert runs == 1 and condition(cluster, "Degraded").get("status") != "True"
    print(
        f"\ne2e: spec edited while the verified rollout awaited promotion (resources 1000m/1024Mi stored as 1/1Gi): "
        f"no abort, smoke Job ran {runs} "
        "time, promoted with kubectl ragcorp promote"
    )


def test_9_what_the_real_commands_wrote_is_what_the_operator_tests_expect(cluster: Cluster) -> None:
    """tests/operator's stand-in cluster finishes Jobs with these messages: they must be the real ones,
    as the real kubelet path (termination-log file -> Pod status) reports them."""

    def message(job: str) -> str:
        return cluster.termination_message(f"{NAME}-{job}-")

    captured = {
        "migrate": message("migrate-2"),  # v1 -> v2: BASE -> V2
        "downgrade": message("downgrade-3"),  # v3 aborted: V3 -> V2
        "smoke-passed": message("smoke-2"),
        "smoke-failed": message("smoke-3"),
        "backup": message("backup-2"),
    }
    recorded = json.loads((ROOT / "tests" / "support" / "termination_messages.json").read_text())
    assert captured == {k: v for k, v in recorded.items() if not k.startswith("_")}


def test_10_a_pod_config_change_rolls_out_and_a_removed_field_leaves_the_children(cluster: Cluster) -> None:
    """A nodeSelector is pod config: adding it rolls out to the standby colour while the serving
    one keeps its own template; removing it rolls out again. The third revision lands on the
    colour that had it: server-side apply removes what the operator no longer sets (a merge patch
    would keep it for ever)."""
    image_now = status(cluster)["activeImage"]
    pinned = {"kubernetes.io/os": "linux"}
    quick = {"scaleDownDelaySeconds": 2, "keepPrevious": True}

    def node_selector(color: str) -> dict[str, str]:
        deployment = cluster.get("deployment", f"{NAME}-{color}") or {}
        return dict(deployment["spec"]["template"]["spec"].get("nodeSelector") or {})

    def rolled_out_to(color: str, wanted_image: str = image_now) -> Callable[[], bool]:
        return lambda: active_color(cluster) == color and idle_with(cluster, wanted_image)()

    first = active_color(cluster)
    assert first is not None
    other = "green" if first == "blue" else "blue"
    cluster.kubectl(
        "create", "secret", "docker-registry", "registry-credentials",
        "--docker-server=registry.example", "--docker-username=ci", "--docker-password=x",
    )  # fmt: skip
    spread = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}
    pod_fields = {
        "env": [{"name": "FORWARDED_ALLOW_IPS", "value": "10.0.0.0/8"}],
        "podAnnotations": {"ragcorp.example/team": "search"},
        "imagePullSecrets": [{"name": "registry-credentials"}],
        "scheduling__topologySpreadConstraints": [spread],
    }
    apply_spec(
        cluster,
        spec_with(image=image_now, scheduling__nodeSelector=pinned, strategy__blueGreen=quick, **pod_fields),
    )
    eventually(rolled_out_to(other))
    assert node_selector(other) == pinned and node_selector(first) == {}, "the colour it left kept its own"
    [pod, *_] = serving_pods(cluster, other)
    container = pod["spec"]["containers"][0]
    assert {"name": "FORWARDED_ALLOW_IPS", "value": "10.0.0.0/8"} in container["env"], container["env"]
    assert pod["metadata"]["annotations"]["ragcorp.example/team"] == "search"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert not any(
        "ragcorp.example/team" in (p["metadata"].get("annotations") or {}) for p in serving_pods(cluster, first)
    )
    apply_spec(cluster, spec_with(image=image_now, strategy__blueGreen=quick))
    eventually(rolled_out_to(first))
    assert node_selector(other) == pinned, "the previous colour keeps the config it ran with"
    # The same code under another tag: the third revision lands on the colour that had the nodeSelector.
    third = image("v2") if image_now != image("v2") else image("v2.0.1")
    apply_spec(cluster, spec_with(image=third, strategy__blueGreen=quick))
    eventually(rolled_out_to(other, third))
    assert node_selector(other) == {}
    shown = json.loads(cluster.kubectl("get", "deployment", f"{NAME}-{other}", "--show-managed-fields", "-o", "json"))
    managers = {entry["manager"] for entry in shown["metadata"]["managedFields"]}
    assert "ragcorp-operator" in managers
    print(
        f"\ne2e: pod config as revisions: nodeSelector, env, podAnnotations, imagePullSecrets and a topology "
        f"spread added (rolled out to {other}: its running Pods carry each; {first} kept its template), "
        f"removed (rolled out to {first}), then a new tag on {other}: the nodeSelector gone from its Pod "
        f"template (field managers: {', '.join(sorted(managers))})"
    )


def serving_pods(cluster: Cluster, color: str) -> list[dict[str, Any]]:
    """The colour's serving Pods that are not on their way out."""
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=api,{COLOR_LABEL}={color}"
    return [p for p in cluster.items("pods", "-l", selector) if not p["metadata"].get("deletionTimestamp")]


def test_11_kubectl_ragcorp_pause_holds_and_abort_keeps_traffic_where_it_was(cluster: Cluster) -> None:
    serving = status(cluster)["activeImage"]
    held = {"autoPromote": False, "scaleDownDelaySeconds": 5}
    with traffic(cluster) as load:
        apply_spec(cluster, spec_with(image=image("v2.0.2"), strategy__blueGreen=held))
        eventually(lambda: status(cluster).get("phase") == "Promoting")  # verified, awaiting promotion
        cluster.kubectl("ragcorp", "pause", NAME)
        eventually(lambda: condition(cluster, "Progressing").get("reason") == "RolloutPaused")
        cluster.kubectl("ragcorp", "promote", NAME)
        eventually(
            lambda: "ragcorp.dev/promote" not in (cluster.get("rcd", NAME) or {})["metadata"].get("annotations", {})
        )
        declined = status(cluster)["phase"] == "Promoting" and status(cluster)["activeImage"] == serving
        paused_shown = "Paused:      yes" in cluster.kubectl("ragcorp", "status", NAME)
        tree = cluster.kubectl("ragcorp", "get", NAME)
        cluster.kubectl("ragcorp", "resume", NAME)
        eventually(lambda: condition(cluster, "Progressing").get("reason") == "Promoting")
        cluster.kubectl("ragcorp", "abort", NAME)
        timeline = follow(cluster, done=lambda: status(cluster).get("phase") == "Aborted")
    shown = cluster.kubectl("ragcorp", "status", NAME)
    assert declined and paused_shown
    rows = tree_rows(tree)
    assert rows[NAME][:2] == ["RagCorpDeployment", "Paused"], tree
    colors = {name: row for name, row in rows.items() if name.endswith(("(blue)", "(green)"))}
    assert sorted(row[1] for row in colors.values()) == ["active", "preview"], tree
    preview = next(name for name, row in rows.items() if row[1] == "preview")
    assert "v2.0.2" in rows[preview][2] and "2/2 ready" in rows[preview][2], tree
    pods = [row for row in rows.values() if row[:2] == ["Pod", "Running"] and row[2].startswith("ready")]
    assert len(pods) >= 4, tree
    assert any(row[:2] == ["Job", "Succeeded"] and row[2].startswith("smoke") for row in rows.values()), tree
    assert load.failures == [], load.failures[:5]
    assert status(cluster)["activeImage"] == serving and len(set(timeline.served())) == 1
    assert "Aborted" in shown
    apply_spec(cluster, spec_with(image=serving, strategy__blueGreen=held))  # back to what serves
    waited = cluster.kubectl("ragcorp", "status", NAME, "--timeout", "100s")  # a pipeline's wait: exit 0
    assert waited.splitlines()[-1].startswith("Healthy: ")
    eventually(idle_with(cluster, serving))
    print(
        "\ne2e: kubectl ragcorp pause while v2.0.2 awaited promotion: Progressing Unknown (RolloutPaused), "
        "a promote declined; resumed, then kubectl ragcorp abort: Aborted, "
        f"{serving.rsplit(':', 1)[1]} kept serving ({load.sent} requests, {len(load.failures)} failed); "
        f"kubectl ragcorp status shows both, kubectl ragcorp get the tree ({len(pods)} ready Pods under two colours, "
        "the smoke Job Succeeded); status --timeout after re-applying v2 exited 0 (Healthy)"
    )


def tree_rows(tree: str) -> dict[str, list[str]]:
    """`kubectl ragcorp get`'s table, by name (the tree's drawing stripped): [kind, status, info]."""
    table = tree[tree.index("NAME ") :].splitlines()[1:]
    rows = {}
    for line in table:
        name, *rest = re.split(r"\s{2,}", line.lstrip("│├└─ "), maxsplit=1)
        if not rest:  # the Jobs heading
            continue
        kind, state, *info = re.split(r"\s{2,}", rest[0], maxsplit=2)
        rows[name] = [kind, state, " ".join(info)]
    return rows


def test_12_notifications_reach_a_webhook_as_json_and_as_slack(cluster: Cluster) -> None:
    """The operator's Pods post to a receiver on the node (their own loopback is their own); the
    URLs come from a Secret."""
    serving = status(cluster)["activeImage"]
    with receiving(NODE_ADDRESS) as receiver:
        cluster.kubectl(
            "create",
            "secret",
            "generic",
            "ragcorp-webhooks",
            f"--from-literal=AUDIT={receiver.url}/audit",
            f"--from-literal=SLACK={receiver.url}/slack",
        )
        targets = [
            {"name": "audit", "url": {"name": "ragcorp-webhooks", "key": "AUDIT"}},
            {
                "name": "team",
                "url": {"name": "ragcorp-webhooks", "key": "SLACK"},
                "format": "slack",
                "on": ["promoted"],
            },
        ]
        fast = {"scaleDownDelaySeconds": 5}
        apply_spec(cluster, spec_with(image=image("v2.0.1"), notifications=targets, strategy__blueGreen=fast))
        eventually(idle_with(cluster, image("v2.0.1")))
        eventually(
            lambda: receiver.bodies("/slack") and "promoted" in [b["trigger"] for b in receiver.bodies("/audit")]
        )
    audit = [(b["trigger"], b["reason"]) for b in receiver.bodies("/audit")]
    [slack] = receiver.bodies("/slack")
    assert audit[:2] == [("started", "RolloutStarted"), ("promoted", "Promoted")], audit
    assert slack["text"].startswith(f"✅ *default/{NAME}* promoted: traffic switched to")
    print(
        f"\ne2e: notifications from {serving.rsplit(':', 1)[1]} to v2.0.1: the JSON webhook got "
        f"{', '.join(trigger for trigger, _ in audit)}; the Slack one (promoted only) got {slack['text']!r}"
    )


def test_13_a_namespace_scoped_install_may_touch_only_the_namespaces_it_watches(cluster: Cluster) -> None:
    """The chart's RoleBindings as the real RBAC authorizer reads them: a second release watching
    team-a starts (its start-up check lists what it watches) and may read Secrets and write
    workloads there, and nowhere else; cluster-wide it may only discover CRDs and namespaces."""
    for namespace in ("team-a", "team-b"):
        cluster.kubectl("create", "namespace", namespace)
    cluster.helm(
        "install", "scoped", str(ROOT / "charts" / "ragcorp-operator"), "--namespace", "ops", "--create-namespace",
        "--set", "watchNamespaces={team-a}", "--set", "replicaCount=1", "--set", "podDisruptionBudget.enabled=false",
        "--wait", "--timeout=3m",
    )  # fmt: skip
    try:
        [account] = cluster.items("serviceaccounts", "-l", "app.kubernetes.io/instance=scoped", namespace="ops")
        who = f"system:serviceaccount:ops:{account['metadata']['name']}"

        def may(*question: str) -> bool:
            answer = cluster.kubectl("auth", "can-i", *question, "--as", who, check=False).strip()
            assert answer in ("yes", "no"), answer
            return answer == "yes"

        asked = {
            "read Secrets in team-a": may("get", "secrets", "-n", "team-a"),
            "write Deployments in team-a": may("patch", "deployments.apps", "-n", "team-a"),
            "create Jobs in team-a": may("create", "jobs.batch", "-n", "team-a"),
            "patch RagCorpDeployments in team-a": may("patch", "ragcorpdeployments.ragcorp.dev", "-n", "team-a"),
            "list CRDs": may("list", "customresourcedefinitions.apiextensions.k8s.io"),
        }
        refused = {
            "read Secrets in team-b": may("get", "secrets", "-n", "team-b"),
            "read Secrets in default": may("get", "secrets", "-n", "default"),
            "write Deployments in team-b": may("patch", "deployments.apps", "-n", "team-b"),
            "list Secrets everywhere": may("list", "secrets", "--all-namespaces"),
        }
    finally:
        cluster.helm("uninstall", "scoped", "--namespace", "ops", "--no-hooks")
    assert all(asked.values()), asked
    assert not any(refused.values()), refused
    print(
        f"\ne2e: namespace-scoped chart (watchNamespaces=team-a) on the real RBAC authorizer: its operator Pod "
        f"started and turned ready; its ServiceAccount may "
        f"{', '.join(asked)}; may not {', '.join(refused)}"
    )


def test_14_the_operators_own_metrics_count_what_the_rollouts_did(cluster: Cluster) -> None:
    """Each operator Pod's /metrics through the API server's Pod proxy (as Prometheus would scrape
    them): the leader's gauge shows the resource Idle, the aborts of the earlier scenarios are
    counted by reason (counters start again in a Pod that took over, so these are the ones since
    scenario 5's kill: the metric gate's and the manual abort), and phases were timed."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: list[tuple[str, dict[str, str], float]] = []
    operators = cluster.items(
        "pods", "-l", "app.kubernetes.io/name=ragcorp-operator,app.kubernetes.io/instance=ragcorp"
    )
    for pod in operators:
        path = f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}:9090/proxy/metrics"
        text = cluster.kubectl("get", "--raw", path)
        samples += [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]

    def total(metric: str, **labels: str) -> float:
        return sum(v for n, found, v in samples if n == metric and all(found.get(k) == w for k, w in labels.items()))

    assert total("ragcorp_operator_rollout_phase", name=NAME, phase="Idle") == 1, "one leader, and it says Idle"
    assert total("ragcorp_operator_rollout_phase", name=NAME) == 1
    gate, manual = (
        total("ragcorp_operator_aborts_total", name=NAME, reason=r) for r in ("MetricGateFailed", "ManualAbort")
    )
    assert gate >= 1 and manual >= 1, (gate, manual)
    timed = total("ragcorp_operator_phase_duration_seconds_count", phase="Verifying")
    assert timed >= 1 and total("ragcorp_operator_reconciles_total", name=NAME, outcome="error") == 0
    print(
        f"\ne2e: the operator's metrics through the API server's Pod proxy ({len(operators)} Pods): {NAME} Idle on "
        f"the leader's gauge; aborts since the takeover MetricGateFailed {gate:.0f}, ManualAbort {manual:.0f}; "
        f"{timed:.0f} Verifying phases timed; no reconcile errors"
    )
