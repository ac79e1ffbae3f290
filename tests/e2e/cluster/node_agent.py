"""Our kubelet on the real control plane: one Node, its Pods run as processes.

It registers the Node and renews its Lease (the node lifecycle controller takes a
silent node for dead), runs the containers of every Pod the scheduler binds here
(through `kubelet.py`: the image's environment, volumes, a private
mount namespace, readiness and liveness probes), and reports Pod status in the
shapes the real kubelet writes: phase, conditions, container states with exit
codes and termination messages, restart counts, the Pod IP. A Pod deleted with a
grace period gets SIGTERM, SIGKILL after the grace, and then the final delete
(grace 0, on the Pod's uid) that only the kubelet sends. Restarts follow
`restartPolicy` with the kubelet's back-off (10 s, doubling, at most 5 min).

It authenticates as `system:node:<name>`, so the Node authorizer and the
NodeRestriction admission plugin limit it exactly as they limit a kubelet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.e2e.cluster.api import Api
from tests.e2e.cluster.kubelet import Kubelet, Pod, now

log = logging.getLogger(__name__)
LEASE_SECONDS = 40
HEARTBEAT_SECONDS = 10.0
BACKOFF_SECONDS = 10.0
BACKOFF_LIMIT_SECONDS = 300.0
NODE_CAPACITY = {"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Tracked:
    """What the agent remembers of one Pod besides its process."""

    pod: Pod
    restart_policy: str
    scheduled: dict[str, Any]
    last_state: dict[str, Any] = field(default_factory=dict)
    written: dict[str, Any] | None = None
    deleting: asyncio.Task[None] | None = None


def _condition(kind: str, ok: bool, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        condition["reason"] = reason
    if not ok and message:
        condition["message"] = message
    return condition


def container_state(pod: Pod, restarting: bool) -> dict[str, Any]:
    if pod.process is None:
        reason, _, message = (pod.waiting or "ContainerCreating").partition(": ")
        return {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    if pod.exit_code is None:
        return {"running": {"startedAt": pod.started_at}}
    if restarting:
        message = f"back-off restarting failed container {pod.container['name']}"
        return {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
    return {"terminated": terminated_state(pod)}


def terminated_state(pod: Pod) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": pod.exit_code,
        "reason": "Completed" if pod.exit_code == 0 else "Error",
        "startedAt": pod.started_at,
        "finishedAt": pod.finished_at,
        "containerID": f"ragcorp://{pod.uid}/{pod.restarts}",
    }
    if pod.message:
        terminated["message"] = pod.message
    return terminated


def pod_status(tracked: Tracked, node_ip: str) -> dict[str, Any]:
    """The status the kubelet would report for this Pod now."""
    pod = tracked.pod
    container = pod.container
    finished = pod.exit_code is not None and not _restarts(tracked)
    backing_off = pod.exit_code is not None and not finished
    state = container_state(pod, restarting=backing_off)
    last_state = {"terminated": terminated_state(pod)} if backing_off else tracked.last_state
    running = "running" in state
    ready = running and pod.ready and not pod.terminating
    if pod.process is None:
        phase = "Pending"
    elif finished:
        phase = "Succeeded" if pod.exit_code == 0 else "Failed"
    else:
        phase = "Running"
    name = container["name"]
    unready = f"containers with unready status: [{name}]"
    status: dict[str, Any] = {
        "phase": phase,
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "podIP": pod.ip,
        "podIPs": [{"ip": pod.ip}],
        "startTime": tracked.scheduled.get("startTime") or pod.started_at or now(),
        "conditions": [
            _condition("PodReadyToStartContainers", True),
            _condition("Initialized", True),
            _condition("Ready", ready, "ContainersNotReady" if not finished else "PodCompleted", unready),
            _condition("ContainersReady", ready, "ContainersNotReady" if not finished else "PodCompleted", unready),
            tracked.scheduled,
        ],
        "containerStatuses": [
            {
                "name": name,
                "image": container["image"],
                "imageID": f"ragcorp://{container['image']}",
                "containerID": f"ragcorp://{pod.uid}/{pod.restarts}" if pod.process is not None else None,
                "ready": ready,
                "started": running,
                "restartCount": pod.restarts,
                "state": state,
                "lastState": last_state,
            }
        ],
    }
    return status


def _restarts(tracked: Tracked) -> bool:
    pod = tracked.pod
    if tracked.restart_policy == "Always":
        return True
    return tracked.restart_policy == "OnFailure" and pod.exit_code not in (0, None)


class NodeAgent:
    def __init__(self, api: Api, kubelet: Kubelet, name: str, address: str, version: str) -> None:
        self.api = api
        self.kubelet = kubelet
        self.name = name
        self.address = address
        self.version = version
        self.tracked: dict[str, Tracked] = {}
        #: Each finished container's termination message as reported in its Pod's status, by Pod name
        #: (kept after the Pod is gone, for tests that check what the real commands wrote).
        self.terminations: dict[str, str] = {}
        self._heartbeat = 0.0

    async def register(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
        }
        await self.api.ensure("/api/v1/nodes", node)
        await self.heartbeat()

    def _node_status(self) -> dict[str, Any]:
        stamp = now()
        return {
            "capacity": NODE_CAPACITY,
            "allocatable": NODE_CAPACITY,
            "addresses": [{"type": "InternalIP", "address": self.address}, {"type": "Hostname", "address": self.name}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "ragcorp node agent is posting ready status",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "nodeInfo": {
                "kubeletVersion": self.version,
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "ragcorp://processes",
                "kernelVersion": "",
                "osImage": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kubeProxyVersion": "",
            },
        }

    async def heartbeat(self) -> None:
        """Renew the Lease; post the Node's status now and then, as the kubelet does."""
        leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": _micro_now()}
        response = await self.api.merge_patch(f"{leases}/{self.name}", {"spec": spec})
        if response.status_code == 404:
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": await self._node_uid()}
                    ],
                },
                "spec": spec,
            }
            await self.api.ensure(leases, lease)
        else:
            response.raise_for_status()
        if time.monotonic() - self._heartbeat > 60:
            posted = await self.api.merge_patch(f"/api/v1/nodes/{self.name}/status", {"status": self._node_status()})
            posted.raise_for_status()
            self._heartbeat = time.monotonic()

    async def _node_uid(self) -> str:
        node = await self.api.get(f"/api/v1/nodes/{self.name}")
        assert node is not None, "the node registered itself first"
        uid: str = node["metadata"]["uid"]
        return uid

    async def sync(self) -> None:
        seen = set()
        for manifest in await self.api.items("/api/v1/pods", fieldSelector=f"spec.nodeName={self.name}"):
            uid = manifest["metadata"]["uid"]
            seen.add(uid)
            await self._sync_pod(manifest)
        for uid in set(self.tracked) - seen:  # deleted for good (force, or our final delete)
            tracked = self.tracked.pop(uid)
            if tracked.deleting is None:
                self.kubelet.discard(tracked.pod)

    async def _sync_pod(self, manifest: dict[str, Any]) -> None:
        meta, spec, status = manifest["metadata"], manifest["spec"], manifest.get("status") or {}
        tracked = self.tracked.get(meta["uid"])
        if tracked is None:
            if status.get("phase") in ("Succeeded", "Failed"):
                return  # finished before this agent started: nothing to run
            pod = self.kubelet.new_pod(meta["namespace"], meta["name"], meta["uid"], spec)
            scheduled = next(
                (c for c in status.get("conditions") or [] if c["type"] == "PodScheduled"),
                {"type": "PodScheduled", "status": "True"},
            )
            tracked = self.tracked[meta["uid"]] = Tracked(pod, spec.get("restartPolicy", "Always"), scheduled)
        pod = tracked.pod
        if meta.get("deletionTimestamp"):
            if tracked.deleting is None:
                grace = float(meta.get("deletionGracePeriodSeconds", 30))
                tracked.deleting = asyncio.create_task(self._delete(tracked, grace))
            await self._report(tracked, meta)
            return
        if pod.process is None:
            if await self.kubelet.start(pod):
                self._watch(pod)
        elif pod.exit_code is not None and _restarts(tracked) and self._backed_off(pod):
            tracked.last_state = {"terminated": terminated_state(pod)}
            pod.restarts += 1
            if await self.kubelet.start(pod):
                self._watch(pod)
        await self._report(tracked, meta)

    def _watch(self, pod: Pod) -> None:
        self.kubelet.watch_readiness(pod)
        self.kubelet.watch_liveness(pod)

    @staticmethod
    def _backed_off(pod: Pod) -> bool:
        return time.monotonic() - pod.exited >= min(BACKOFF_SECONDS * 2**pod.restarts, BACKOFF_LIMIT_SECONDS)

    async def _report(self, tracked: Tracked, meta: dict[str, Any]) -> None:
        status = pod_status(tracked, self.address)
        if status == tracked.written:
            return
        response = await self.api.merge_patch(
            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", {"status": status}
        )
        if response.status_code not in (404, 409):
            response.raise_for_status()
        tracked.written = status
        terminated = status["containerStatuses"][0]["state"].get("terminated")
        if terminated is not None:
            self.terminations[meta["name"]] = terminated.get("message", "")

    async def _delete(self, tracked: Tracked, grace: float) -> None:
        """Graceful deletion's node half: stop the container, then remove the Pod object."""
        pod = tracked.pod
        await self.kubelet.terminate(pod, grace)
        with contextlib.suppress(Exception):
            meta = {"namespace": pod.namespace, "name": pod.name}
            await self._report(tracked, meta)
        response = await self.api.http.request(
            "DELETE",
            f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}",
            json={"gracePeriodSeconds": 0, "preconditions": {"uid": pod.uid}},
        )
        if response.status_code >= 400 and response.status_code not in (404, 409):
            log.warning("final delete of %s: %s %s", pod.name, response.status_code, response.text[:200])

    async def stop(self) -> None:
        pods = [tracked.pod for tracked in self.tracked.values()]
        for pod in pods:
            self.kubelet.kill(pod)
        tasks = [task for pod in pods for task in pod.tasks]
        tasks += [t.deleting for t in self.tracked.values() if t.deleting is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
