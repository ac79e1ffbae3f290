"""The node's container runtime: each container a real process, probed and stopped as a kubelet does.

A container is started by `launcher.py` in a mount and a network namespace of its
own; the Pod's end of a veth pair becomes its eth0 with the Pod IP (the node's end
holds the Pods' gateway), as a CNI bridge plugin would set it up. Its environment is
what the Pod spec gives: the image's ENV, then `envFrom`, then `env` (literal values,
`secretKeyRef`, `configMapKeyRef`, `fieldRef`), plus the Service links Kubernetes
injects (the `kubernetes` Service's in every Pod). Secret, ConfigMap and projected
volumes (the ServiceAccount token by TokenRequest, `kube-root-ca.crt`, the
namespace) are written into the Pod's directory and bound at their mount paths.
What the program leaves at `terminationMessagePath` becomes
`state.terminated.message`, as the kubelet reports it (at most 4096 bytes).

Not faithful, and said so in docs/development.md: one node, no image pulls (an
image maps to this checkout's build; an unknown one stays `ErrImagePull`), no
resource limits, no read-only root filesystem, no token rotation; missing mount
points are created on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.cluster.api import Api
from tests.e2e.cluster.images import Image

LAUNCHER = Path(__file__).with_name("launcher.py")
MESSAGE_LIMIT = 4096
#: Where the Kubernetes API is in every Pod's environment, whatever its namespace.
MASTER_SERVICE = ("default", "kubernetes")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The Pods' default gateway: an address of the node's end of every veth pair.
GATEWAY = "169.254.1.1"


async def attach_network(pid: int, address: str) -> None:
    """Join the process's network namespace to the node: a veth pair, eth0 inside, a route to the Pod IP."""
    host_side = "rcv" + "".join(f"{int(octet):02x}" for octet in address.split(".")[2:])
    stale = await asyncio.create_subprocess_exec("ip", "link", "del", host_side, stderr=asyncio.subprocess.DEVNULL)
    await stale.wait()  # the previous container's pair, when its namespace is not gone yet
    for command in (
        ["link", "add", host_side, "type", "veth", "peer", "name", "eth0", "netns", str(pid)],
        ["addr", "add", f"{GATEWAY}/32", "dev", host_side],
        ["link", "set", host_side, "up"],
        ["route", "replace", f"{address}/32", "dev", host_side],
    ):
        process = await asyncio.create_subprocess_exec("ip", *command, stderr=asyncio.subprocess.PIPE)
        _, error = await process.communicate()
        if process.returncode:
            raise RuntimeError(f"ip {' '.join(command)}: {error.decode().strip()}")


class ContainerConfigError(Exception):
    """The kubelet cannot build the container's environment (CreateContainerConfigError)."""


@dataclass
class Pod:
    namespace: str
    name: str
    uid: str
    spec: dict[str, Any]
    ip: str
    directory: Path
    process: asyncio.subprocess.Process | None = None
    ready: bool = False
    terminating: bool = False
    exit_code: int | None = None
    message: str = ""
    waiting: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    restarts: int = 0
    #: time.monotonic() when the container last exited.
    exited: float = 0.0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def container(self) -> dict[str, Any]:
        container: dict[str, Any] = self.spec["containers"][0]
        return container

    def port(self, name_or_number: str | int) -> int:
        if isinstance(name_or_number, int) or str(name_or_number).isdigit():
            return int(name_or_number)
        for port in self.container.get("ports") or []:
            if port.get("name") == name_or_number:
                return int(port["containerPort"])
        raise KeyError(f"pod {self.name} has no port named {name_or_number}")


def closed_ancestor(path: Path) -> tuple[str, str] | None:
    """The first directory on `path` that other users cannot enter, and its child on the path."""
    parts = path.resolve().parts
    for depth in range(1, len(parts) - 1):
        directory = Path(*parts[: depth + 1])
        if not directory.stat().st_mode & 0o001:
            return str(directory), str(Path(*parts[: depth + 2]))
    return None


#: The node's Python, which every service image runs; a non-root container must reach it.
INTERPRETER_ROOT = closed_ancestor(Path(sys.base_prefix))


def service_links(services: list[dict[str, Any]]) -> dict[str, str]:
    """The `<NAME>_SERVICE_HOST`/`<NAME>_PORT...` variables Kubernetes puts in every Pod."""
    env: dict[str, str] = {}
    for service in services:
        ip = (service.get("spec") or {}).get("clusterIP")
        ports = (service.get("spec") or {}).get("ports") or []
        if not ip or not ports:
            continue
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        first = ports[0]
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(first["port"])
        env[f"{prefix}_PORT"] = f"tcp://{ip}:{first['port']}"
        for port in ports:
            protocol = port.get("protocol", "TCP")
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
            key = f"{prefix}_PORT_{port['port']}_{protocol}"
            env[key] = f"{protocol.lower()}://{ip}:{port['port']}"
            env[f"{key}_PROTO"] = protocol.lower()
            env[f"{key}_PORT"] = str(port["port"])
            env[f"{key}_ADDR"] = ip
    return env


class Kubelet:
    def __init__(
        self,
        api: Api,
        images: dict[str, Image],
        root: Path,
        hosts_file: Path,
        addresses: Iterator[str],
    ) -> None:
        self.api = api
        self.addresses = addresses
        self.images = images
        self.root = root
        self.hosts_file = hosts_file
        self.pods: dict[str, Pod] = {}
        #: Every container start, in order: (pod name, argv), for tests that count runs.
        self.starts: list[tuple[str, list[str]]] = []
        self.services: list[dict[str, Any]] = []

    # --- environment ----------------------------------------------------------------------
    async def environment(self, pod: Pod, image: Image) -> dict[str, str]:
        container = pod.container
        env = dict(image.env)
        links = pod.spec.get("enableServiceLinks", True)
        env.update(
            service_links(
                [
                    s
                    for s in self.services
                    if (links and s["metadata"]["namespace"] == pod.namespace)
                    or (s["metadata"]["namespace"], s["metadata"]["name"]) == MASTER_SERVICE
                ]
            )
        )
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                data = await self.api.config_map_data(pod.namespace, source["configMapRef"]["name"])
            else:
                data = await self.api.secret_data(pod.namespace, source["secretRef"]["name"])
            if data is None:
                ref = source.get("configMapRef") or source.get("secretRef") or {}
                if not ref.get("optional"):
                    raise ContainerConfigError(f"{ref.get('name')} not found")
                continue
            env.update({prefix + k: v for k, v in data.items()})
        for variable in container.get("env") or []:
            env[variable["name"]] = await self._value(pod, variable)
        env["HOSTNAME"] = pod.name
        return env

    async def _value(self, pod: Pod, variable: dict[str, Any]) -> str:
        if "value" in variable:
            return str(variable["value"])
        source = variable.get("valueFrom") or {}
        if "fieldRef" in source:
            return {"metadata.name": pod.name, "metadata.namespace": pod.namespace, "status.podIP": pod.ip}[
                source["fieldRef"]["fieldPath"]
            ]
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
        assert ref is not None, f"unsupported env source {variable}"
        data = await (
            self.api.secret_data(pod.namespace, ref["name"])
            if "secretKeyRef" in source
            else self.api.config_map_data(pod.namespace, ref["name"])
        )
        if data is None or ref["key"] not in data:
            raise ContainerConfigError(f"couldn't find key {ref['key']} in {ref['name']}")
        return data[ref["key"]]

    # --- lifecycle ------------------------------------------------------------------------
    def new_pod(self, namespace: str, name: str, uid: str, spec: dict[str, Any]) -> Pod:
        directory = self.root / "pods" / name
        directory.mkdir(parents=True)
        pod = Pod(namespace, name, uid, spec, next(self.addresses), directory)
        self.pods[name] = pod
        return pod

    async def start(self, pod: Pod) -> bool:
        """Start the Pod's container; False (and `pod.waiting` says why) when it cannot start."""
        container = pod.container
        image = self.images.get(container["image"])
        if image is None:
            pod.waiting = "ErrImagePull"
            return False
        try:
            env = await self.environment(pod, image)
            await self._fill_volumes(pod)
        except ContainerConfigError as exc:
            pod.waiting = f"CreateContainerConfigError: {exc}"
            return False
        pod.waiting = None
        argv = list(container.get("command") or image.entrypoint)
        if "args" in container:
            argv += list(container["args"])
        elif "command" not in container:
            argv += image.cmd
        attempt = pod.directory / f"attempt-{pod.restarts}"
        (attempt / "upper").mkdir(parents=True)
        (attempt / "work").mkdir()
        message_path = container.get("terminationMessagePath", "/dev/termination-log")
        assert message_path.startswith("/dev/"), "this kubelet keeps termination messages under /dev"
        message_file = attempt / "upper" / message_path.removeprefix("/dev/")
        message_file.write_text("")
        message_file.chmod(0o666)
        security = {**(pod.spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
        uid = security.get("runAsUser", image.user)
        launch = {
            "argv": argv,
            "env": env,
            "uid": uid,
            "gid": security.get("runAsGroup", uid),
            "dev_upper": str(attempt / "upper"),
            "dev_work": str(attempt / "work"),
            "hosts": str(self.hosts_file),
            "mounts": self._mounts(pod, attempt),
            "expose": INTERPRETER_ROOT if uid else None,
            "stash": str(attempt / "stash"),
            "network": {"address": pod.ip, "gateway": GATEWAY},
        }
        spec_file = attempt / "launch.json"
        spec_file.write_text(json.dumps(launch))
        log = (pod.directory / "log").open("ab")
        pod.process = await asyncio.create_subprocess_exec(
            "unshare",
            "--mount",
            "--net",
            "--propagation",
            "private",
            sys.executable,
            str(LAUNCHER),
            str(spec_file),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        pod.exit_code = None
        pod.started_at = now()
        self.starts.append((pod.name, argv))
        pod.tasks.append(asyncio.create_task(self._collect(pod, message_file)))
        try:
            await attach_network(pod.process.pid, pod.ip)
        except RuntimeError as exc:  # the sandbox failed: the container fails, and its Pod says so
            with contextlib.suppress(ProcessLookupError):
                pod.process.kill()
            with (pod.directory / "log").open("a") as output:
                output.write(f"kubelet: network setup failed: {exc}\n")
        return True

    def _mounts(self, pod: Pod, attempt: Path) -> list[dict[str, str]]:
        volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
        mounts = []
        for mount in pod.container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                source = pod.directory / "volumes" / mount["name"]
            elif {"projected", "secret", "configMap"} & volume.keys():
                source = pod.directory / "volumes" / mount["name"]  # filled by _fill_volumes
            elif "persistentVolumeClaim" in volume:
                source = self.root / "pvcs" / pod.namespace / volume["persistentVolumeClaim"]["claimName"]
            else:
                raise AssertionError(f"unsupported volume {volume}")
            source.mkdir(parents=True, exist_ok=True)
            source.chmod(0o777)
            mounts.append({"source": str(source), "target": mount["mountPath"]})
        return mounts

    async def _fill_volumes(self, pod: Pod) -> None:
        """Write what Secret, ConfigMap and projected volumes hold, as the kubelet's volume plugins do."""
        for volume in pod.spec.get("volumes") or []:
            sources = (volume.get("projected") or {}).get("sources") or []
            if "secret" in volume:
                sources = [{"secret": {**volume["secret"], "name": volume["secret"]["secretName"]}}]
            elif "configMap" in volume:
                sources = [{"configMap": volume["configMap"]}]
            if not sources:
                continue
            files: dict[str, str] = {}
            for source in sources:
                files.update(await self._projected_files(pod, source))
            directory = pod.directory / "volumes" / volume["name"]
            directory.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                target = directory / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
                target.chmod(0o644)

    async def _projected_files(self, pod: Pod, source: dict[str, Any]) -> dict[str, str]:
        if "serviceAccountToken" in source:
            token = source["serviceAccountToken"]
            try:
                value = await self.api.service_account_token(
                    pod.namespace,
                    pod.spec.get("serviceAccountName", "default"),
                    pod.name,
                    pod.uid,
                    token.get("audience"),
                )
            except LookupError as exc:
                raise ContainerConfigError(str(exc)) from exc
            return {token["path"]: value}
        if "downwardAPI" in source:
            fields = {"metadata.namespace": pod.namespace, "metadata.name": pod.name}
            return {item["path"]: fields[item["fieldRef"]["fieldPath"]] for item in source["downwardAPI"]["items"]}
        kind, ref = ("Secret", source["secret"]) if "secret" in source else ("ConfigMap", source["configMap"])
        data = await (
            self.api.secret_data(pod.namespace, ref["name"])
            if kind == "Secret"
            else self.api.config_map_data(pod.namespace, ref["name"])
        )
        if data is None:
            if ref.get("optional"):
                return {}
            raise ContainerConfigError(f'{kind.lower()} "{ref["name"]}" not found')
        items = ref.get("items") or [{"key": key, "path": key} for key in data]
        return {item["path"]: data[item["key"]] for item in items if item["key"] in data}

    async def _collect(self, pod: Pod, message_file: Path) -> None:
        assert pod.process is not None
        code = await pod.process.wait()
        pod.ready = False
        pod.message = message_file.read_bytes()[:MESSAGE_LIMIT].decode(errors="replace")  # noqa: ASYNC240
        pod.finished_at = now()
        pod.exited = time.monotonic()
        pod.exit_code = code

    async def terminate(self, pod: Pod, grace: float | None = None) -> None:
        """SIGTERM, then SIGKILL after the grace period; out of every Service first."""
        pod.terminating = True
        pod.ready = False
        grace = float(pod.spec.get("terminationGracePeriodSeconds", 30) if grace is None else grace)
        process = pod.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for task in pod.tasks:
            task.cancel()
        self.pods.pop(pod.name, None)

    def kill(self, pod: Pod) -> None:
        """SIGKILL now (a node shutting down at the end of a test)."""
        if pod.process is not None and pod.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pod.process.pid, signal.SIGKILL)

    def discard(self, pod: Pod) -> None:
        """A Pod gone from the API without a graceful deletion (forced): its container killed, forgotten."""
        self.kill(pod)
        for task in pod.tasks:
            task.cancel()
        self.pods.pop(pod.name, None)

    # --- probes ---------------------------------------------------------------------------
    def watch_readiness(self, pod: Pod) -> None:
        probe = pod.container.get("readinessProbe")
        if probe is None:
            pod.ready = True
            return
        if not any(task.get_name() == "readiness" and not task.done() for task in pod.tasks):
            pod.tasks.append(asyncio.create_task(self._probe_loop(pod, probe), name="readiness"))

    async def _probe_loop(self, pod: Pod, probe: dict[str, Any]) -> None:
        url, period = _probe_url(pod, probe), float(probe.get("periodSeconds", 10))
        failure_threshold = int(probe.get("failureThreshold", 3))
        success_threshold = int(probe.get("successThreshold", 1))
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        failures = successes = 0
        async with httpx.AsyncClient(timeout=float(probe.get("timeoutSeconds", 1))) as http:
            while not pod.terminating:
                started = time.monotonic()
                if await _healthy(http, url):
                    failures, successes = 0, successes + 1
                    if successes >= success_threshold:
                        pod.ready = pod.exit_code is None and not pod.terminating
                else:
                    successes, failures = 0, failures + 1
                    if failures >= failure_threshold or pod.exit_code is not None:
                        pod.ready = False
                await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    def watch_liveness(self, pod: Pod) -> None:
        """Probe the running container; after `failureThreshold` failures stop it, so it restarts."""
        probe = pod.container.get("livenessProbe")
        if probe is not None and pod.process is not None:
            pod.tasks.append(asyncio.create_task(self._liveness_loop(pod, pod.process, probe), name="liveness"))

    async def _liveness_loop(self, pod: Pod, process: asyncio.subprocess.Process, probe: dict[str, Any]) -> None:
        url, period = _probe_url(pod, probe), float(probe.get("periodSeconds", 10))
        failure_threshold = int(probe.get("failureThreshold", 3))
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        failures = 0
        async with httpx.AsyncClient(timeout=float(probe.get("timeoutSeconds", 1))) as http:
            while process.returncode is None and not pod.terminating:
                failures = 0 if await _healthy(http, url) else failures + 1
                if failures >= failure_threshold:
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(signal.SIGTERM)
                    return
                await asyncio.sleep(period)


def _probe_url(pod: Pod, probe: dict[str, Any]) -> str:
    get = probe["httpGet"]
    return f"http://{pod.ip}:{pod.port(get['port'])}{get.get('path', '/')}"


async def _healthy(http: httpx.AsyncClient, url: str) -> bool:
    """An HTTP probe's verdict, as the kubelet gives it: 200-399 passes, anything else fails."""
    try:
        return 200 <= (await http.get(url)).status_code < 400
    except httpx.HTTPError:
        return False
