"""kmock's Kubernetes emulator, with the API-server behaviours our operator relies on.

kmock's docs invite subclassing to fill its gaps; these are the ones we need:
`uid`, `resourceVersion`, `generation` (bumped on spec changes) and
`creationTimestamp` on objects; `resourceVersion` preconditions on updates (409 when stale); names
from `generateName`; label selectors on lists and watches; and garbage
collection of children by ownerReferences once their owner is gone (after its finalizers, as the
API server's garbage collector does; Pods are deleted gracefully: marked, and gone once their
kubelet reports them stopped). It also keeps
a log of every call as (bearer token, RBAC verb, API group, resource[/subresource]),
which the chart's RBAC test reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import enums, k8s, rendering

_versions = itertools.count(1)


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
_REMOVING = (enums.action.DELETE, enums.action.UPDATE)


@attrs.frozen
class Call:
    token: str
    verb: str
    group: str
    resource: str


def rbac_verb(request: rendering.Request) -> str:
    """The verb an API server's authorizer checks for this request."""
    method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
    if method == "GET":
        if request.params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if request.name else "list"
    if method == "DELETE":
        return "delete" if request.name else "deletecollection"
    return _VERBS[method]


APPLY_PATCH = "application/apply-patch+yaml"


def _removed(previous: Any, configuration: Any) -> dict[str, Any]:
    """A merge patch removing what `previous` set and `configuration` no longer does."""
    if not isinstance(previous, dict) or not isinstance(configuration, dict):
        return {}
    removals: dict[str, Any] = {}
    for key, value in previous.items():
        if key not in configuration:
            removals[key] = None
        elif nested := _removed(value, configuration[key]):
            removals[key] = nested
    return removals


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = (
            _merged(merged[key], value) if isinstance(merged.get(key), dict) and isinstance(value, dict) else value
        )
    return merged


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    calls: list[Call] = attrs.field(factory=list)
    #: Server-side apply: each manager's last applied configuration, by object.
    applied: dict[tuple[Any, ...], dict[str, Any]] = attrs.field(factory=dict)
    #: While set, status writes answer 409 Conflict, as when another writer keeps winning the race.
    refuse_status_writes: bool = False

    async def _handle(self, request: rendering.Request) -> Any:
        """kmock keeps every request for assertions and, to route each new one, evaluates each
        reaction's filters over that whole log: a request cost O(requests so far) (40 ms at first,
        250 ms after 4,000; at 64 kept, still three quarters of the emulator's time). Our tests assert
        on `calls` instead, so a request leaves the log once it is routed (a watch) or answered:
        routing scans only the requests in flight."""
        if request.headers.get("Content-Type", "").startswith(APPLY_PATCH) and request.resource is not None:
            applied = self._server_side_apply(request)
            # Routing finds reactions through the log: the request it routes must be the one logged.
            self._requests[:] = [applied if logged is request else logged for logged in self._requests]
            request = applied
        try:
            return await self._handle_logged(request)
        finally:
            self._forget(request)

    def _forget(self, request: rendering.Request) -> None:
        for index, logged in enumerate(self._requests):
            if logged is request:
                del self._requests[index]
                break

    def _server_side_apply(self, request: rendering.Request) -> rendering.Request:
        """Server-side apply as far as the operator's children need it: an apply creates a missing
        object; otherwise the configuration is merged in and whatever the same field manager applied
        before and no longer sets is removed (lists are replaced whole: finer than the real thing's
        merge by key is not needed by configurations that own their lists entirely)."""
        manager = request.params.get("fieldManager")
        assert manager, "the API server refuses an apply without a fieldManager (400)"
        key = (request.resource, request.namespace, request.name, manager)
        previous = self.applied.get(key, {})
        self.applied[key] = request.data
        if self._current(request) is None:
            return attrs.evolve(request, action=enums.action.CREATE, method=enums.method.POST, name=None)
        return attrs.evolve(request, data=_merged(_removed(previous, request.data), request.data))

    async def _handle_logged(self, request: rendering.Request) -> Any:
        if request.resource is not None and request.resource.plural:  # not discovery
            resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
            token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            self.calls.append(Call(token, rbac_verb(request), request.resource.group or "", resource))
        if request.resource is not None and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            if request.action == enums.action.CREATE:
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", datetime.datetime.now(datetime.UTC).isoformat())
                meta["generation"] = 1
                meta["resourceVersion"] = str(next(_versions))
            elif request.action == enums.action.UPDATE and request.name is not None:
                if self.refuse_status_writes and request.subresource == "status":
                    raise k8s.KubernetesObjectConflictError()
                current = self._current(request)
                expected = meta.get("resourceVersion")
                if current is not None and expected and expected != current["metadata"].get("resourceVersion"):
                    # An optimistic-concurrency precondition, as the API server checks it.
                    raise k8s.KubernetesObjectConflictError()
                if current is not None:
                    meta["resourceVersion"] = str(next(_versions))
                    if "spec" in request.data and request.subresource is None:
                        meta["generation"] = int(current.get("metadata", {}).get("generation") or 1) + 1
        # Garbage collection follows the owner's actual removal: a DELETE of an object with
        # finalizers only marks it, and the PATCH that clears the last finalizer removes it.
        uid = None
        if request.resource is not None and request.name is not None and request.action in _REMOVING:
            uid = ((self._current(request) or {}).get("metadata") or {}).get("uid")
        response = await super()._handle(request)
        if uid and self._current(request) is None:
            await self._collect_garbage(uid)
        return response

    def _stored(self, request: rendering.Request) -> Any:
        """The object a request names, by its key: kmock scans every object for every GET (a tenth
        of the emulator's time with a few thousand objects)."""
        if request.resource is None or request.name is None:
            return None
        obj = self._objects._objects.get((request.resource, request.namespace, request.name))
        return None if obj is None or obj.deleted else obj

    def _current(self, request: rendering.Request) -> dict[str, Any] | None:
        obj = self._stored(request)
        return None if obj is None else dict(obj.raw)

    async def _serve_fetch(self, request: rendering.Request) -> Any:
        async with self._lock:
            obj = self._stored(request)
        if obj is None:
            raise k8s.KubernetesObjectNotFoundError()
        return obj.raw

    async def _render_error(self, exc: Exception) -> Any:
        """Errors as the API server words them (kmock adds a formatted traceback to each, which costs
        more than serving the request)."""
        if not isinstance(exc, k8s.KubernetesError):
            return await super()._render_error(exc)
        reason = {404: "NotFound", 409: "Conflict"}.get(exc.status, exc.reason or type(exc).__name__)
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        return aiohttp.web.json_response(
            {**body, "message": exc.message, "reason": reason, "code": exc.status}, status=exc.status
        )

    async def _collect_garbage(self, owner_uid: str) -> None:
        """Delete (recursively) every object whose ownerReferences name the deleted owner."""
        doomed = []
        for (resource, _, _), obj in self.objects.items():
            if obj.deleted:
                continue
            owners = obj.raw.get("metadata", {}).get("ownerReferences") or []
            if any(ref.get("uid") == owner_uid for ref in owners):
                doomed.append((resource, obj))
        for resource, obj in doomed:
            if resource.plural == "pods":
                # Graceful deletion: a Pod is only marked; it goes once its kubelet reports it stopped
                # (kmock removes a marked object without finalizers on its next update).
                obj.patch({"metadata": {"deletionTimestamp": datetime.datetime.now(datetime.UTC).isoformat()}})
                await self._buses[resource].put({"type": "MODIFIED", "object": obj.raw})
                continue
            raw = obj.raw
            obj.delete()
            await self._buses[resource].put({"type": "DELETED", "object": raw})
            uid = raw.get("metadata", {}).get("uid")
            if uid:
                await self._collect_garbage(uid)

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[Any]:
        self._forget(request)  # routed: a stream open for minutes must not slow every other request
        selector = request.params.get("labelSelector")
        async for event in super()._serve_watch(request):
            if selector and isinstance(event, dict):
                labels = (event.get("object") or {}).get("metadata", {}).get("labels") or {}
                if not _matches(labels, selector):
                    continue
            yield event

    async def _serve_list(self, request: rendering.Request) -> Any:
        payload = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector and isinstance(payload, dict):
            payload["items"] = [
                item for item in payload["items"] if _matches(item.get("metadata", {}).get("labels") or {}, selector)
            ]
        return payload


ALL_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
RESOURCES = {
    "ragcorp.dev/v1alpha1/ragcorpdeployments": kmock.ResourceInfo(
        kind="RagCorpDeployment",
        namespaced=True,
        shortnames={"rcd"},
        subresources={"status", "scale"},
        verbs=ALL_VERBS,
    ),
    # kopf waits for the namespaces resource to exist even when it watches cluster-wide.
    "v1/namespaces": kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs={"list", "watch", "get"}),
    "v1/configmaps": kmock.ResourceInfo(kind="ConfigMap", namespaced=True),
    "v1/secrets": kmock.ResourceInfo(kind="Secret", namespaced=True),
    "v1/services": kmock.ResourceInfo(kind="Service", namespaced=True),
    "v1/pods": kmock.ResourceInfo(kind="Pod", namespaced=True),
    "v1/events": kmock.ResourceInfo(kind="Event", namespaced=True),
    "apps/v1/deployments": kmock.ResourceInfo(
        kind="Deployment", namespaced=True, subresources={"status"}, verbs=ALL_VERBS
    ),
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", namespaced=True, subresources={"status"}, verbs=ALL_VERBS),
    "autoscaling/v2/horizontalpodautoscalers": kmock.ResourceInfo(kind="HorizontalPodAutoscaler", namespaced=True),
    "policy/v1/poddisruptionbudgets": kmock.ResourceInfo(kind="PodDisruptionBudget", namespaced=True),
    "coordination.k8s.io/v1/leases": kmock.ResourceInfo(kind="Lease", namespaced=True),
}
MONITORING = {
    "monitoring.coreos.com/v1/servicemonitors": kmock.ResourceInfo(kind="ServiceMonitor", namespaced=True),
    "monitoring.coreos.com/v1/prometheusrules": kmock.ResourceInfo(kind="PrometheusRule", namespaced=True),
}

#: The operator authenticates with this token, the test helper with its own, so the emulator's
#: call log tells the operator's calls apart.
OPERATOR_TOKEN = "operator-token"
HELPER_TOKEN = "helper-token"


@contextlib.contextmanager
def running_api_server(resources: dict[str, kmock.ResourceInfo]) -> Iterator[ApiServer]:
    """The emulator on its own event loop in a thread, so tests and the operator can block freely."""
    started = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    running: dict[str, ApiServer] = {}

    async def serve() -> None:
        stop["event"] = asyncio.Event()
        async with ApiServer() as server, kmock.Server(server):
            for key, info in resources.items():
                server.resources[key] = info
            running["server"] = server
            started.set()
            await stop["event"].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(timeout=30), "the Kubernetes emulator did not start"
    try:
        yield running["server"]
    finally:
        loop.call_soon_threadsafe(stop["event"].set)
        # aiohttp's shutdown gives open requests (a watch a client has not closed yet) up to 60 s.
        thread.join(timeout=90)
        assert not thread.is_alive(), "the Kubernetes emulator did not stop within 90 s"
        loop.close()


def write_kubeconfig(path: Path, api_url: str) -> Path:
    """A kubeconfig pointing at the emulator: the operator connects exactly as it would to a cluster."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "emulator",
                "clusters": [{"name": "emulator", "cluster": {"server": api_url}}],
                "users": [{"name": "operator", "user": {"token": OPERATOR_TOKEN}}],
                "contexts": [
                    {"name": "emulator", "context": {"cluster": "emulator", "user": "operator", "namespace": "default"}}
                ],
            }
        )
    )
    return path
