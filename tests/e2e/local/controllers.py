"""The local cluster's controllers: Deployments, Jobs and Services, as Kubernetes runs them.

- Deployment controller: Pods of the current template (`pod-template-hash`), a rolling
  update bounded by `maxSurge`/`maxUnavailable`, scale-down by SIGTERM, and the status
  fields `kubectl rollout status` reads, zero counts omitted as the API server omits them.
- Job controller: one Pod per attempt (`restartPolicy: Never`), `backoffLimit` with the
  real 10 s doubling back-off, `activeDeadlineSeconds`, and the conditions of Kubernetes
  1.31+ (`SuccessCriteriaMet` then `Complete`; `FailureTarget` then `Failed`), with a Pod
  object whose container status carries the termination message.
- kube-proxy and DNS: each Service gets a cluster IP (127.2.0.0/16) and a TCP proxy per
  port that sends each new connection to a ready endpoint its selector picks at that
  moment; `/etc/hosts` in every Pod maps `<svc>.<ns>.svc[.cluster.local]` to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.local.api import Api
from tests.e2e.local.kubelet import Kubelet, Pod, now

JOB_BACKOFF_SECONDS = 10.0
CRASH_BACKOFF_SECONDS = 10.0


def _suffix() -> str:
    return uuid.uuid4().hex[:5]


def _count(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = total * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def _omit_zero(status: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The API server omits zero counts; a merge patch removes a field with null."""
    return {k: (None if k in keys and not v else v) for k, v in status.items()}


class DeploymentController:
    def __init__(self, api: Api, kubelet: Kubelet) -> None:
        self.api = api
        self.kubelet = kubelet
        self.written: dict[str, dict[str, Any]] = {}

    def retire(self, pod: Pod) -> None:
        pod.terminating = True  # out of every Service now, as the endpoints controller does
        pod.ready = False
        asyncio.get_running_loop().create_task(self.kubelet.terminate(pod))

    async def sync(self, deployments: list[dict[str, Any]]) -> None:
        alive = set()
        for deployment in deployments:
            alive.add(deployment["metadata"]["uid"])
            await self._sync(deployment)
        for pod in list(self.kubelet.pods.values()):
            if pod.owner.startswith("deployment:") and pod.owner.split(":", 1)[1] not in alive and not pod.terminating:
                self.retire(pod)  # the Deployment is gone: garbage collection takes its Pods

    async def _sync(self, deployment: dict[str, Any]) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        uid = meta["uid"]
        owner = f"deployment:{uid}"
        wanted = int(spec.get("replicas", 1))
        template = spec["template"]
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = _count(rolling.get("maxSurge", "25%"), wanted, round_up=True)
        unavailable = _count(rolling.get("maxUnavailable", "25%"), wanted, round_up=False)
        pods = [p for p in self.kubelet.pods.values() if p.owner == owner and not p.terminating]
        current = [p for p in pods if p.labels.get("pod-template-hash") == template_hash]
        old = [p for p in pods if p not in current]

        for pod in pods:  # restartPolicy Always: a container that exited starts again after a back-off
            crashed = pod.exit_code is not None and time.monotonic() - pod.exited > CRASH_BACKOFF_SECONDS
            if pod.process is None or crashed:
                pod.restarts += int(crashed)
                if await self.kubelet.start(pod):
                    self.kubelet.watch_readiness(pod)
        room = wanted + surge - len(pods) if old else wanted - len(current)
        for _ in range(max(0, min(wanted - len(current), room))):
            labels = {**(template["metadata"].get("labels") or {}), "pod-template-hash": template_hash}
            name = f"{meta['name']}-{template_hash}-{_suffix()}"
            pod = self.kubelet.new_pod(meta["namespace"], name, labels, template["spec"], owner)
            current.append(pod)
            if await self.kubelet.start(pod):
                self.kubelet.watch_readiness(pod)
        for pod in sorted(current, key=lambda p: p.ready)[: max(0, len(current) - wanted)]:
            self.retire(pod)
            current.remove(pod)
        ready_current = sum(p.ready for p in current)
        keep_old = max(0, wanted - unavailable - ready_current)
        for pod in sorted(old, key=lambda p: p.ready)[: max(0, len(old) - keep_old)]:
            self.retire(pod)
            old.remove(pod)

        ready = sum(p.ready for p in current + old)
        complete = len(current) == wanted and ready_current == wanted and not old
        replica_set = f"{meta['name']}-{template_hash}"
        status = _omit_zero(
            {
                "observedGeneration": meta.get("generation", 1),
                "replicas": len(current) + len(old),
                "updatedReplicas": len(current),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": max(0, len(current) + len(old) - ready),
            },
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        )
        available = ready >= wanted - unavailable
        status["conditions"] = [
            {
                "type": "Available",
                "status": "True" if available else "False",
                "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "message": f"Deployment {'has' if available else 'does not have'} minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                "message": f'ReplicaSet "{replica_set}" '
                + ("has successfully progressed." if complete else "is progressing."),
            },
        ]
        if self.written.get(uid) != status:
            await self.api.patch("Deployment", meta["namespace"], meta["name"], {"status": status}, status=True)
            self.written[uid] = status


@dataclass
class JobRun:
    name: str
    namespace: str
    uid: str
    spec: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    start_time: str = field(default_factory=now)
    failed: int = 0
    pod: Pod | None = None
    #: Whether the current attempt's end has been reported (Pod status, Job counts).
    reported: bool = False
    next_attempt: float = 0.0
    done: bool = False


class JobController:
    def __init__(self, api: Api, kubelet: Kubelet) -> None:
        self.api = api
        self.kubelet = kubelet
        self.runs: dict[str, JobRun] = {}

    async def sync(self, jobs: list[dict[str, Any]]) -> None:
        alive = set()
        for job in jobs:
            meta = job["metadata"]
            alive.add(meta["uid"])
            run = self.runs.get(meta["uid"])
            if run is None:
                finished = {c.get("type") for c in (job.get("status") or {}).get("conditions") or []}
                if finished & {"Complete", "Failed"}:
                    continue
                run = self.runs[meta["uid"]] = JobRun(meta["name"], meta["namespace"], meta["uid"], job["spec"])
                await self._patch(run, {"startTime": run.start_time, "active": 1})
            if not run.done:
                await self._sync(run)
        for uid, run in list(self.runs.items()):
            if uid not in alive:  # deleted: its Pod goes too, once its process stopped (graceful deletion)
                del self.runs[uid]
                if run.pod is not None:
                    if run.pod.exit_code is None:
                        await self.kubelet.terminate(run.pod)
                    with contextlib.suppress(Exception):  # already gone
                        await self.api.patch(
                            "Pod", run.namespace, run.pod.name, {"status": {"phase": "Failed"}}, status=True
                        )

    async def _sync(self, run: JobRun) -> None:
        deadline = run.spec.get("activeDeadlineSeconds")
        if deadline is not None and time.monotonic() - run.started > float(deadline):
            if run.pod is not None and run.pod.exit_code is None:
                await self.kubelet.terminate(run.pod)
            await self._fail(run, "DeadlineExceeded", "Job was active longer than specified deadline")
            return
        pod = run.pod
        if pod is None:
            await self._start_attempt(run)
        elif pod.process is None:  # could not start yet (image, config): the kubelet keeps trying
            if await self.kubelet.start(pod):
                await self._pod_status(run, pod)
        elif pod.exit_code is not None and not run.reported:
            run.reported = True
            await self._finished(run, pod)
        elif pod.exit_code is not None and time.monotonic() >= run.next_attempt:
            await self._start_attempt(run)

    async def _finished(self, run: JobRun, pod: Pod) -> None:
        await self._pod_status(run, pod)
        if pod.exit_code == 0:
            message = "Reached expected number of succeeded pods"
            conditions = [self._condition(t, "CompletionsReached", message) for t in ("SuccessCriteriaMet", "Complete")]
            await self._patch(run, {"active": None, "succeeded": 1, "completionTime": now(), "conditions": conditions})
            run.done = True
            return
        run.failed += 1
        if run.failed > int(run.spec.get("backoffLimit", 6)):
            await self._fail(run, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            return
        await self._patch(run, {"active": None, "failed": run.failed})
        run.next_attempt = time.monotonic() + JOB_BACKOFF_SECONDS * 2 ** (run.failed - 1)

    async def _start_attempt(self, run: JobRun) -> None:
        template = run.spec["template"]
        labels = {
            **(template["metadata"].get("labels") or {}),
            "batch.kubernetes.io/controller-uid": run.uid,
            "batch.kubernetes.io/job-name": run.name,
            "controller-uid": run.uid,
            "job-name": run.name,
        }
        name = f"{run.name}-{_suffix()}"
        pod = self.kubelet.new_pod(run.namespace, name, labels, template["spec"], f"job:{run.uid}")
        run.pod, run.reported = pod, False
        await self.api.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": run.namespace,
                    "labels": labels,
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": run.name,
                            "uid": run.uid,
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": template["spec"],
                "status": {"phase": "Pending"},
            }
        )
        if await self.kubelet.start(pod):
            await self._pod_status(run, pod)
        await self._patch(run, {"active": 1})

    async def _pod_status(self, run: JobRun, pod: Pod) -> None:
        container = pod.container
        base = {"name": container["name"], "image": container["image"], "restartCount": 0, "ready": False}
        if pod.exit_code is None:
            state = {"running": {"startedAt": pod.started_at}}
            phase, extra = "Running", {"started": True}
        else:
            terminated: dict[str, Any] = {
                "exitCode": pod.exit_code,
                "reason": "Completed" if pod.exit_code == 0 else "Error",
                "startedAt": pod.started_at,
                "finishedAt": pod.finished_at,
                "containerID": f"local://{pod.name}",
            }
            if pod.message:
                terminated["message"] = pod.message
            state = {"terminated": terminated}
            phase, extra = ("Succeeded" if pod.exit_code == 0 else "Failed"), {"started": False}
        status = {
            "phase": phase,
            "podIP": pod.ip,
            "startTime": pod.started_at,
            "containerStatuses": [{**base, **extra, "state": state}],
        }
        await self.api.patch("Pod", run.namespace, pod.name, {"status": status}, status=True)

    async def _fail(self, run: JobRun, reason: str, message: str) -> None:
        conditions = [self._condition(t, reason, message) for t in ("FailureTarget", "Failed")]
        await self._patch(run, {"active": None, "failed": max(run.failed, 1), "conditions": conditions})
        run.done = True

    @staticmethod
    def _condition(kind: str, reason: str, message: str) -> dict[str, str]:
        moment = now()
        return {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastProbeTime": moment,
            "lastTransitionTime": moment,
        }

    async def _patch(self, run: JobRun, status: dict[str, Any]) -> None:
        await self.api.patch("Job", run.namespace, run.name, {"status": status}, status=True)


_cluster_ips = (f"127.2.{i // 250}.{i % 250 + 1}" for i in itertools.count(1))


@dataclass
class ServiceEntry:
    ip: str
    selector: dict[str, str]
    namespace: str
    servers: list[asyncio.Server] = field(default_factory=list)
    turn: int = 0


class ServiceProxy:
    """kube-proxy and cluster DNS for the local node."""

    def __init__(self, api: Api, kubelet: Kubelet, hosts_file: Path) -> None:
        self.api = api
        self.kubelet = kubelet
        self.hosts_file = hosts_file
        self.services: dict[tuple[str, str], ServiceEntry] = {}
        self.external_names: set[tuple[str, str]] = set()
        self._write_hosts()

    def address(self, namespace: str, name: str) -> str:
        return self.services[(namespace, name)].ip

    async def sync(self, services: list[dict[str, Any]]) -> None:
        seen = set()
        for service in services:
            meta, spec = service["metadata"], service.get("spec") or {}
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            entry = self.services.get(key)
            if entry is None:
                entry = self.services[key] = ServiceEntry(next(_cluster_ips), {}, meta["namespace"])
                for port in spec.get("ports") or []:
                    entry.servers.append(
                        await asyncio.start_server(
                            lambda r, w, e=entry, p=port: self._connect(r, w, e, p), entry.ip, int(port["port"])
                        )
                    )
                self._write_hosts()
            if spec.get("clusterIP") != entry.ip:
                await self.api.patch("Service", meta["namespace"], meta["name"], {"spec": {"clusterIP": entry.ip}})
                service.setdefault("spec", {})["clusterIP"] = entry.ip
            entry.selector = dict(spec.get("selector") or {})
        for key in set(self.services) - seen - self.external_names:
            for server in self.services.pop(key).servers:
                server.close()
            self._write_hosts()

    async def external(self, namespace: str, name: str, port: int, socket: Path) -> None:
        """A name in cluster DNS for something off the cluster (here: the database's Unix socket)."""
        entry = self.services[(namespace, name)] = ServiceEntry(next(_cluster_ips), {}, namespace)

        async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(str(socket))
            await _join(reader, writer, upstream_reader, upstream_writer)

        entry.servers.append(await asyncio.start_server(connect, entry.ip, port))
        self.external_names.add((namespace, name))
        self._write_hosts()

    def endpoints(self, entry: ServiceEntry) -> list[Pod]:
        return [
            pod
            for pod in self.kubelet.pods.values()
            if pod.namespace == entry.namespace
            and pod.ready
            and not pod.terminating
            and entry.selector
            and all(pod.labels.get(k) == v for k, v in entry.selector.items())
        ]

    async def _connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, entry: ServiceEntry, port: dict[str, Any]
    ) -> None:
        backends = self.endpoints(entry)
        if not backends:
            writer.close()
            return
        pod = backends[entry.turn % len(backends)]
        entry.turn += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                pod.ip, pod.port(port.get("targetPort", port["port"]))
            )
        except OSError:
            writer.close()
            return
        await _join(reader, writer, upstream_reader, upstream_writer)

    def _write_hosts(self) -> None:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for (namespace, name), entry in sorted(self.services.items()):
            lines.append(f"{entry.ip}\t{name}.{namespace}.svc.cluster.local {name}.{namespace}.svc {name}.{namespace}")
        # Rewritten in place: every Pod has this very file (inode) bound at /etc/hosts.
        with self.hosts_file.open("w") as handle:
            handle.write("\n".join(lines) + "\n")

    def close(self) -> None:
        for entry in self.services.values():
            for server in entry.servers:
                server.close()


async def _join(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    try:
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
    finally:
        for end in (writer, upstream_writer):
            with contextlib.suppress(Exception):
                end.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction; pass a clean end on as a half-close, an error as a close."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
