"""A real Prometheus that scrapes what ServiceMonitors select, as the Prometheus Operator sets it up.

The cluster installs the two monitoring.coreos.com kinds the operator renders where
they exist (ServiceMonitor, PrometheusRule; structural schemas that keep every
field, not the Prometheus Operator's full ones). This module plays the Prometheus
Operator's part that matters to the metric gate: one scrape job per ServiceMonitor
endpoint, the bearer credential from the referenced Secret, and each target
labelled as its relabelling labels it (`namespace`, `service`, `pod`, `endpoint`,
`job`). Debian's Prometheus is built without Kubernetes service discovery, so the
targets (every endpoint of the selected Services' EndpointSlices, on the named port)
are read here from the API server and handed over by `file_sd`; Prometheus itself
scrapes, stores and answers the gate's PromQL. It is reached in-cluster at the
address the operator's default names, `prometheus-operated.monitoring.svc:9090`.

One liberty, said in the docs: every job scrapes every `SCRAPE_SECONDS`, whatever
interval the ServiceMonitor asks for, so the gate's windows fill in seconds.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

SCRAPE_SECONDS = 2
PROMETHEUS_ADDRESS = "10.244.0.3"
PROMETHEUS_PORT = 9090
MONITORING_CRDS = (("servicemonitors", "ServiceMonitor"), ("prometheusrules", "PrometheusRule"))


def monitoring_crds() -> list[dict[str, Any]]:
    """ServiceMonitor and PrometheusRule, served as the Prometheus Operator's CRDs serve them (v1)."""
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.monitoring.coreos.com"},
            "spec": {
                "group": "monitoring.coreos.com",
                "scope": "Namespaced",
                "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                                },
                            }
                        },
                    }
                ],
            },
        }
        for plural, kind in MONITORING_CRDS
    ]


def _selects(monitor: dict[str, Any], service: dict[str, Any]) -> bool:
    wanted = (monitor["spec"].get("selector") or {}).get("matchLabels") or {}
    labels = service["metadata"].get("labels") or {}
    same_namespace = service["metadata"]["namespace"] == monitor["metadata"]["namespace"]
    return same_namespace and all(labels.get(key) == value for key, value in wanted.items())


def targets(
    monitor: dict[str, Any],
    endpoint: dict[str, Any],
    services: list[dict[str, Any]],
    slices: dict[tuple[str, str], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """The ServiceMonitor endpoint's targets with the labels the Prometheus Operator's relabelling gives
    them: every endpoint of a selected Service's EndpointSlices (`slices`, by Service), on the named port."""
    found = []
    for service in services:
        if not _selects(monitor, service):
            continue
        namespace, name = service["metadata"]["namespace"], service["metadata"]["name"]
        for endpoint_slice in slices.get((namespace, name), []):
            port = next(
                (p["port"] for p in endpoint_slice.get("ports") or [] if p.get("name") == endpoint["port"]), None
            )
            if port is None:
                continue
            for item in endpoint_slice.get("endpoints") or []:
                pod = (item.get("targetRef") or {}).get("name", "")
                labels = {
                    "namespace": namespace,
                    "service": name,
                    "pod": pod,
                    "endpoint": endpoint["port"],
                    "job": name,
                }
                found.extend({"targets": [f"{address}:{port}"], "labels": labels} for address in item["addresses"])
    return found


def credentials(endpoint: dict[str, Any]) -> dict[str, str] | None:
    """The Secret key a ServiceMonitor endpoint's bearer credential is in, if it has one."""
    found: dict[str, str] | None = (endpoint.get("authorization") or {}).get("credentials")
    return found


class Prometheus:
    """The process and its configuration, rewritten from the cluster's ServiceMonitors."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "prometheus.yml"
        self.process: subprocess.Popen[bytes] | None = None
        self.jobs: list[dict[str, Any]] = []
        self.url = f"http://{PROMETHEUS_ADDRESS}:{PROMETHEUS_PORT}"

    def start(self, binary: str) -> None:
        self._write([])
        log = (self.root / "logs").joinpath("prometheus.log")
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.root / 'prometheus-data'}",
                    f"--web.listen-address={PROMETHEUS_ADDRESS}:{PROMETHEUS_PORT}",
                    "--web.enable-lifecycle",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def _write(self, jobs: list[dict[str, Any]]) -> None:
        config = {"global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"}}
        self.config.write_text(yaml.safe_dump({**config, "scrape_configs": jobs}, sort_keys=False))
        self.jobs = jobs

    def sync(
        self,
        monitors: list[dict[str, Any]],
        services: list[dict[str, Any]],
        slices: dict[tuple[str, str], list[dict[str, Any]]],
        secret: Callable[[str, str, str], str | None],
    ) -> None:
        """Rewrite jobs and targets from the cluster's objects; `secret(namespace, name, key)` reads a credential."""
        jobs = []
        for monitor in monitors:
            meta = monitor["metadata"]
            for index, endpoint in enumerate(monitor.get("spec", {}).get("endpoints") or []):
                name = f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}"
                stem = name.replace("/", "_")
                job: dict[str, Any] = {
                    "job_name": name,
                    "scrape_interval": f"{SCRAPE_SECONDS}s",
                    "metrics_path": endpoint.get("path", "/metrics"),
                    "file_sd_configs": [{"files": [str(self.root / "targets" / f"{stem}.json")]}],
                }
                credential = credentials(endpoint)
                if credential:
                    value = secret(meta["namespace"], credential["name"], credential["key"])
                    if value is None:
                        continue  # the Prometheus Operator leaves out a monitor whose Secret is missing
                    file = self.root / "credentials" / stem
                    file.parent.mkdir(exist_ok=True)
                    file.write_text(value)
                    job["authorization"] = {"type": "Bearer", "credentials_file": str(file)}
                _write_if_changed(self.root / "targets" / f"{stem}.json", targets(monitor, endpoint, services, slices))
                jobs.append(job)
        if jobs != self.jobs:
            self._write(jobs)
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{self.url}/-/reload", timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _write_if_changed(path: Path, found: list[dict[str, Any]]) -> None:
    text = json.dumps(found, sort_keys=True)
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(exist_ok=True)
        staged = path.with_suffix(".tmp")
        staged.write_text(text)
        staged.rename(path)  # Prometheus reads a whole file or none


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


@contextlib.contextmanager
def running_prometheus(root: Path) -> Iterator[Prometheus | None]:
    binary = prometheus_binary()
    if binary is None:
        yield None
        return
    prometheus = Prometheus(root)
    prometheus.start(binary)
    try:
        yield prometheus
    finally:
        prometheus.stop()
