"""The operator against kmock's Kubernetes emulator, run as it runs in a cluster: its own process,
`ragcorp-operator run`, with the chart's production settings (events drive it; a full resync
every 300 s).

The bench plays the cluster's controllers at once (Jobs succeed, Deployments turn ready) with
the tests' helper, times the operator's reactions, counts the requests it makes (the emulator
logs each with its bearer token), and samples its CPU and memory while it manages many
resources.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragcorp_operator.cluster import Cluster, load_api_client
from tests.support.kube_emulator import (
    HELPER_TOKEN,
    MONITORING,
    OPERATOR_TOKEN,
    RESOURCES,
    ApiServer,
    running_api_server,
    write_kubeconfig,
)
from tests.support.operator_cluster import ClusterHelper

SPEC = {
    "image": "registry.example/ragcorp:1.0",
    "replicas": 2,
    "secrets": {"databaseUrl": {"name": "db", "key": "DATABASE_URL"}},
    "strategy": {"blueGreen": {"scaleDownDelaySeconds": 0}},
}
FIRST_PASS = [
    ("ConfigMap", "{}-dashboards"),
    ("Service", "{}"),
    ("Service", "{}-preview"),
    ("PodDisruptionBudget", "{}"),
    ("ServiceMonitor", "{}"),
    ("PrometheusRule", "{}"),
    ("Job", "{}-migrate-1"),
]


def first_pass_written(cluster: ClusterHelper, name: str) -> bool:
    """Every child of the first pass, the ConfigMap the migration Job reads (named by its config) too."""
    if not all(cluster.get(kind, child.format(name)) for kind, child in FIRST_PASS):
        return False
    job = cluster.get("Job", f"{name}-migrate-1") or {}
    config_map = job["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    return cluster.get("ConfigMap", config_map) is not None


def wait(check: Callable[[], Any], timeout: float = 600, interval: float = 0.02) -> float:
    """Seconds until `check()` is truthy."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the operator did not get there in time")
        time.sleep(interval)
    return time.perf_counter() - started


@contextmanager
def operator_process(url: str) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryDirectory() as folder:
        kubeconfig = write_kubeconfig(Path(folder) / "kubeconfig", url)
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "RAGCORP_OPERATOR_METRICS_PORT": "0",
        }
        command = [
            str(Path(sys.executable).with_name("ragcorp-operator")),
            "run",
            "--standalone",
            "--liveness-port",
            "0",
        ]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        old = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = str(kubeconfig)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # kopf drains its watch streams; do not wait on a busy emulator
                process.kill()
                process.wait()
            if old is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = old


def helper() -> ClusterHelper:
    api_client = load_api_client()
    api_client.configuration.refresh_api_key_hook = None
    api_client.configuration.api_key["BearerToken"] = f"Bearer {HELPER_TOKEN}"
    found = ClusterHelper(Cluster(api_client))
    if found.get("Secret", "db") is None:
        found.create_secret("db", {"DATABASE_URL": base64.b64encode(b"postgresql://db/rag").decode()})
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bring_to_ready(cluster: ClusterHelper, name: str) -> bool:
    """One step of the cluster's controllers for `name`; True once the resource is Ready."""
    if cluster.condition(name, "Ready").get("status") == "True":
        return True
    for job in (f"{name}-migrate-1", f"{name}-smoke-1"):
        found = cluster.get("Job", job)
        if found is not None and not (found.get("status") or {}).get("conditions"):
            cluster.finish_job(job, succeeded=True)
    deployment = cluster.get("Deployment", f"{name}-blue")
    if deployment is not None and not (deployment.get("status") or {}).get("readyReplicas"):
        cluster.mark_deployment_ready(f"{name}-blue")
    return False


def watching(server: ApiServer) -> bool:
    """The operator is up once it watches RagCorpDeployments (its start is not what we time)."""
    return any(call.verb == "watch" and call.resource == "ragcorpdeployments" for call in server.calls)


def operator_requests(server: ApiServer) -> int:
    """Requests the operator made so far (watch streams count once, when opened)."""
    return sum(1 for call in server.calls if call.token == OPERATOR_TOKEN)


def quiet(server: ApiServer, seconds: float = 1.0) -> None:
    """Until the operator made no request for `seconds`."""
    last, since = operator_requests(server), time.perf_counter()
    while time.perf_counter() - since < seconds:
        time.sleep(0.05)
        now = operator_requests(server)
        if now != last:
            last, since = now, time.perf_counter()


def rollout_timings(idle_seconds: float) -> dict[str, Any]:
    """Apply -> first-pass children -> Ready; the smoke Job's success -> the active Service on the
    new colour; and what one idle resource costs: the requests of a pass that changes nothing,
    and requests per second with nothing happening."""
    with (
        running_api_server({**RESOURCES, **MONITORING}) as server,
        operator_process(str(server.url).rstrip("/")),
    ):
        cluster = helper()
        wait(lambda: watching(server), timeout=120)
        started = time.perf_counter()
        cluster.apply_resource("rag", SPEC)
        children = wait(lambda: first_pass_written(cluster, "rag"))
        wait(lambda: bring_to_ready(cluster, "rag"))
        to_ready = time.perf_counter() - started
        cluster.apply_resource("rag", {**SPEC, "image": "registry.example/ragcorp:2.0"})
        wait(lambda: cluster.get("Job", "rag-migrate-2"))
        cluster.finish_job("rag-migrate-2", succeeded=True)
        wait(lambda: cluster.get("Deployment", "rag-green"))
        cluster.mark_deployment_ready("rag-green")
        wait(lambda: cluster.get("Job", "rag-smoke-2"))
        cluster.finish_job("rag-smoke-2", succeeded=True)  # the last gate
        switch = wait(lambda: cluster.selector_color("rag") == "green")
        wait(lambda: cluster.status("rag").get("phase") == "Idle")
        quiet(server)
        before = operator_requests(server)
        cluster.annotate("rag", {"example.com/touched": "1"})  # an event that changes nothing
        quiet(server)
        steady_pass = operator_requests(server) - before
        before = operator_requests(server)
        time.sleep(idle_seconds)
        idle_rate = (operator_requests(server) - before) / idle_seconds
    return {
        "apply_to_children_s": round(children, 2),
        "apply_to_ready_s": round(to_ready, 2),
        "last_gate_to_switch_s": round(switch, 2),
        "steady_pass_requests": steady_pass,
        "idle_requests_per_s": round(idle_rate, 3),
        "idle_window_s": idle_seconds,
    }


def many_resources(count: int, budget_seconds: float, idle_seconds: float) -> dict[str, Any]:
    """Apply `count` resources, play the cluster for them until all are Ready (at most
    `budget_seconds`), sampling the operator's CPU and memory; then its cost while they idle."""
    with (
        running_api_server({**RESOURCES, **MONITORING}) as server,
        operator_process(str(server.url).rstrip("/")) as process,
    ):
        cluster = helper()
        wait(lambda: watching(server), timeout=120)
        names = [f"rag-{i:03d}" for i in range(count)]
        started = time.perf_counter()
        cpu_before = cpu_seconds(process.pid)
        requests_before = operator_requests(server)
        rss = [rss_mib(process.pid)]
        applied: list[str] = []
        pending: set[str] = set()
        all_ready: float | None = None
        while time.perf_counter() - started < budget_seconds:
            if len(applied) < count:
                name = names[len(applied)]
                cluster.apply_resource(name, SPEC)
                applied.append(name)
                pending.add(name)
            else:
                pending = {name for name in pending if not bring_to_ready(cluster, name)}
                if not pending:
                    all_ready = time.perf_counter() - started
                    break
            rss.append(rss_mib(process.pid))
        elapsed = time.perf_counter() - started
        cpu = (cpu_seconds(process.pid) - cpu_before) / elapsed
        requests = operator_requests(server) - requests_before
        ready = len(applied) - len(pending) if len(applied) == count else 0
        quiet(server, 2.0)
        idle_cpu_before, idle_requests_before = cpu_seconds(process.pid), operator_requests(server)
        time.sleep(idle_seconds)
        idle_cpu = (cpu_seconds(process.pid) - idle_cpu_before) / idle_seconds
        idle_rate = (operator_requests(server) - idle_requests_before) / idle_seconds / max(count, 1)
    return {
        "resources": count,
        "applied": len(applied),
        "ready": ready,
        "all_ready_s": round(all_ready, 1) if all_ready is not None else None,
        "window_s": round(elapsed, 1),
        "operator_cpu_cores": round(cpu, 3),
        "operator_rss_mib": round(max(rss), 1),
        "operator_requests": requests,
        "idle_cpu_cores": round(idle_cpu, 4),
        "idle_requests_per_s_per_resource": round(idle_rate, 4),
    }
