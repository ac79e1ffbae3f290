"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler as processes.

Flags follow kubeadm's static Pods: TLS with one CA, client certificates per
component, ServiceAccount tokens signed by the cluster's key, Node and RBAC
authorization, the default admission plugins plus NodeRestriction; the controller
manager runs every controller with its own ServiceAccount
(`--use-service-account-credentials`), so RBAC is enforced on them too.

Addresses: the API server serves on the node's address; the node's addresses and
the service range are routed to this host (`ip route add local ...`), so the
service proxy can listen on every cluster IP; each Pod has a network namespace of
its own joined by a veth pair (the node agent's job, as a CNI plugin's). No
address is loopback: the API server refuses loopback addresses in EndpointSlices,
as it should.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.e2e.cluster.binaries import Binaries
from tests.e2e.cluster.pki import Credential, Pki, make_pki

POD_RANGE = "10.244.0.0/16"
#: The node's own addresses (API server, database, Prometheus): local, unlike the Pods' (veth pairs).
NODE_RANGE = "10.244.0.0/24"
SERVICE_RANGE = "10.96.0.0/16"
NODE_ADDRESS = "10.244.0.1"
API_PORT = 6443
API_SERVICE_IP = "10.96.0.1"
API_URL = f"https://{NODE_ADDRESS}:{API_PORT}"
NODE_NAME = "ragcorp-node"
#: The controllers the e2e scenarios depend on, by the names kube-controller-manager takes.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "horizontal-pod-autoscaler-controller",
    "disruption-controller",
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "pod-garbage-collector-controller",
    "ttl-after-finished-controller",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def route_local(cidr: str) -> None:
    """Make every address of `cidr` an address of this host, as 127.0.0.0/8 is."""
    routes = subprocess.run(["ip", "route", "show", "table", "local"], capture_output=True, text=True, check=True)
    if f"local {cidr} " not in routes.stdout:
        subprocess.run(["ip", "route", "add", "local", cidr, "dev", "lo"], check=True)


def unroute_local(cidr: str) -> None:
    subprocess.run(["ip", "route", "del", "local", cidr, "dev", "lo"], capture_output=True)


def kubeconfig(path: Path, pki: Pki, user: str, credential: Credential, server: str = API_URL) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": user,
                "clusters": [{"name": "ragcorp", "cluster": {"server": server, "certificate-authority": str(pki.ca)}}],
                "users": [
                    {
                        "name": user,
                        "user": {"client-certificate": str(credential.certificate), "client-key": str(credential.key)},
                    }
                ],
                "contexts": [{"name": user, "context": {"cluster": "ragcorp", "user": user, "namespace": "default"}}],
            }
        )
    )
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    root: Path
    binaries: Binaries
    pki: Pki
    kubeconfig: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> str:
        return (self.root / "logs" / f"{name}.log").read_text(errors="replace")

    def start(self, name: str, args: list[str]) -> None:
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        with (logs / f"{name}.log").open("ab") as output:
            self.processes[name] = subprocess.Popen(
                [self.binaries[name], *args], stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = "\n".join(self.log(name).splitlines()[-20:])
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_ready(plane: ControlPlane, url: str, timeout: float) -> None:
    context = ssl.create_default_context(cafile=str(plane.pki.ca))
    context.load_cert_chain(str(plane.pki.admin.certificate), str(plane.pki.admin.key))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        plane.check_alive()
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s: {last}")


def _etcd_args(root: Path, client: int, peer: int) -> list[str]:
    return [
        "--name=ragcorp",
        f"--data-dir={root / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=ragcorp=http://127.0.0.1:{peer}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def _apiserver_args(root: Path, pki: Pki, etcd: int) -> list[str]:
    return [
        f"--etcd-servers=http://127.0.0.1:{etcd}",
        f"--advertise-address={NODE_ADDRESS}",
        f"--bind-address={NODE_ADDRESS}",
        f"--secure-port={API_PORT}",
        f"--service-cluster-ip-range={SERVICE_RANGE}",
        f"--tls-cert-file={pki.server.certificate}",
        f"--tls-private-key-file={pki.server.key}",
        f"--client-ca-file={pki.ca}",
        f"--service-account-key-file={pki.service_account_public}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        f"--cert-dir={root / 'pki' / 'apiserver'}",
        "--profiling=false",
        "--v=1",
    ]


def _component_args(root: Path, pki: Pki, name: str, credential: Credential) -> list[str]:
    """What kube-controller-manager and kube-scheduler share: their identity, one instance, a local port."""
    config = str(kubeconfig(root / f"{name}.kubeconfig", pki, name, credential))
    return [
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}",
        "--v=1",
    ]


def _controller_manager_args(root: Path, pki: Pki) -> list[str]:
    return [
        *_component_args(root, pki, "controller-manager", pki.controller_manager),
        f"--controllers={','.join(CONTROLLERS)}",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca}",
        f"--cluster-cidr={POD_RANGE}",
        f"--service-cluster-ip-range={SERVICE_RANGE}",
        "--horizontal-pod-autoscaler-sync-period=5s",
    ]


@contextlib.contextmanager
def control_plane(root: Path, binaries: Binaries) -> Iterator[ControlPlane]:
    """etcd and the three control-plane programs, up and serving; stopped on exit."""
    for cidr in (NODE_RANGE, SERVICE_RANGE):
        route_local(cidr)
    pki = make_pki(
        root / "pki",
        [NODE_ADDRESS, API_SERVICE_IP, "127.0.0.1"],
        [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "localhost",
        ],
    )
    plane = ControlPlane(root, binaries, pki, kubeconfig(root / "kubeconfig", pki, "admin", pki.admin))
    try:
        etcd = free_port()
        plane.start("etcd", _etcd_args(root, etcd, free_port()))
        plane.start("kube-apiserver", _apiserver_args(root, pki, etcd))
        _wait_ready(plane, f"{API_URL}/readyz", timeout=120)
        plane.start("kube-controller-manager", _controller_manager_args(root, pki))
        plane.start("kube-scheduler", _component_args(root, pki, "scheduler", pki.scheduler))
        yield plane
    finally:
        plane.stop()
        for cidr in (NODE_RANGE, SERVICE_RANGE):
            unroute_local(cidr)
