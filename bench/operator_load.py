"""The operator against kmock's Kubernetes emulator, run as it runs in a cluster: its own process,
`ragcorp-operator run`, the production reconcile interval unless told otherwise.

The bench plays the cluster's controllers (Jobs succeed, Deployments turn ready) with the
tests' helper, times the operator's reactions, and samples its CPU and memory while it
manages many resources.
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
from tests.operator.emulator import HELPER_TOKEN, MONITORING, RESOURCES, ApiServer, running_api_server, write_kubeconfig
from tests.operator.support import ClusterHelper

SPEC = {
    "image": "registry.example/ragcorp:1.0",
    "replicas": 2,
    "secrets": {"databaseUrl": {"name": "db", "key": "DATABASE_URL"}},
    "strategy": {"blueGreen": {"scaleDownDelaySeconds": 0}},
}
FIRST_PASS = [
    ("ConfigMap", "{}-config"),
    ("ConfigMap", "{}-dashboards"),
    ("Service", "{}"),
    ("Service", "{}-preview"),
    ("PodDisruptionBudget", "{}"),
    ("ServiceMonitor", "{}"),
    ("PrometheusRule", "{}"),
    ("Job", "{}-migrate-1"),
]


def wait(check: Callable[[], Any], timeout: float = 600, interval: float = 0.02) -> float:
    """Seconds until `check()` is truthy."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the operator did not get there in time")
        time.sleep(interval)
    return time.perf_counter() - started


@contextmanager
def operator_process(url: str, interval: float) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryDirectory() as folder:
        kubeconfig = write_kubeconfig(Path(folder) / "kubeconfig", url)
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "RAGCORP_RECONCILE_INTERVAL": str(interval),
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


def rollout_timings(interval: float) -> dict[str, Any]:
    """Apply -> first-pass children, and the smoke Job's success -> the active Service on the new colour."""
    with (
        running_api_server({**RESOURCES, **MONITORING}) as server,
        operator_process(str(server.url).rstrip("/"), interval),
    ):
        cluster = helper()
        wait(lambda: watching(server), timeout=120)
        started = time.perf_counter()
        cluster.apply_resource("rag", SPEC)
        children = wait(lambda: all(cluster.get(kind, name.format("rag")) for kind, name in FIRST_PASS))
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
    return {
        "reconcile_interval_s": interval,
        "apply_to_children_s": round(children, 2),
        "apply_to_ready_s": round(to_ready, 2),
        "last_gate_to_switch_s": round(switch, 2),
    }


def many_resources(count: int, interval: float, budget_seconds: float) -> dict[str, Any]:
    """Apply `count` resources and play the cluster for them for at most `budget_seconds`, sampling
    the operator's CPU and memory throughout.

    Bounded because kmock's emulator keeps every request for assertions and matches against them
    linearly, so past a few thousand objects it, not the operator, sets the pace.
    """
    with (
        running_api_server({**RESOURCES, **MONITORING}) as server,
        operator_process(str(server.url).rstrip("/"), interval) as process,
    ):
        cluster = helper()
        wait(lambda: watching(server), timeout=120)
        names = [f"rag-{i:03d}" for i in range(count)]
        started = time.perf_counter()
        cpu_before = cpu_seconds(process.pid)
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
        ready = len(applied) - len(pending) if len(applied) == count else 0
    return {
        "resources": count,
        "applied": len(applied),
        "ready": ready,
        "reconcile_interval_s": interval,
        "all_ready_s": round(all_ready, 1) if all_ready is not None else None,
        "window_s": round(elapsed, 1),
        "operator_cpu_cores": round(cpu, 3),
        "operator_rss_mib": round(max(rss), 1),
        "api_calls_total": len(server.calls),
    }
