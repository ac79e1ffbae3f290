"""kmock's Kubernetes emulator, with the API-server behaviours our operator relies on.

kmock's docs invite subclassing to fill its gaps; these are the ones we need:
`uid`, `resourceVersion`, `generation` (bumped on spec changes) and
`creationTimestamp` on objects; names from `generateName`; label selectors on lists; and garbage
collection of children by ownerReferences once their owner is gone (after its finalizers, as the
API server's garbage collector does). It also keeps
a log of every call as (bearer token, RBAC verb, API group, resource[/subresource]),
which the chart's RBAC test reads.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from typing import Any

import attrs
import kmock
from kmock._internal import enums, rendering

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


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    calls: list[Call] = attrs.field(factory=list)

    async def _handle(self, request: rendering.Request) -> Any:
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
                current = self._current(request)
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

    def _current(self, request: rendering.Request) -> dict[str, Any] | None:
        for (resource, namespace, name), obj in self.objects.items():
            if resource == request.resource and namespace == request.namespace and name == request.name:
                return None if obj.deleted else dict(obj.raw)
        return None

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
            raw = obj.raw
            obj.delete()
            await self._buses[resource].put({"type": "DELETED", "object": raw})
            uid = raw.get("metadata", {}).get("uid")
            if uid:
                await self._collect_garbage(uid)

    async def _serve_list(self, request: rendering.Request) -> Any:
        payload = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector and isinstance(payload, dict):
            payload["items"] = [
                item for item in payload["items"] if _matches(item.get("metadata", {}).get("labels") or {}, selector)
            ]
        return payload
