"""The operator's only door to the Kubernetes API: get, list, apply, delete.

A thin layer over the official client's REST call so that every kind, custom
or built-in, takes the same path. Writes are JSON merge patches of the desired
manifest (lists replaced whole), skipped when the object already matches, so a
drift-correction pass over a healthy resource writes nothing. A Job's template
is immutable, so a Job that differs is replaced, never patched; whether it
differs is read from the digest of the spec we asked for (an annotation), since
the server canonicalises what it stores. The resource's
own status is written with the `resourceVersion` it was computed from as a
precondition: a pass that read stale state loses (`Conflict`) and reads again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from ragcorp_operator import GROUP, PLURAL, VERSION
from ragcorp_operator.child_status import foreign_owner, job_finished, job_is_as_asked, owner_uid
from ragcorp_operator.naming import APPLIED_ANNOTATION

Manifest = dict[str, Any]
KIND_CACHE_SECONDS = 60.0
#: (connect, read) seconds for every API call: a call never hangs a reconcile (and so its leadership).
REQUEST_TIMEOUT = (10.0, 30.0)
Outcome = Literal["created", "updated", "replaced", "unchanged"]


class Conflict(Exception):
    """The object changed since it was read (HTTP 409): read it again and decide again."""


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


#: Every kind the operator touches; the Helm chart's RBAC is checked against this table.
KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        "ConfigMap": Kind("", "v1", "configmaps"),
        "Secret": Kind("", "v1", "secrets"),
        "Service": Kind("", "v1", "services"),
        "Pod": Kind("", "v1", "pods"),
        "Deployment": Kind("apps", "v1", "deployments"),
        "Job": Kind("batch", "v1", "jobs"),
        "HorizontalPodAutoscaler": Kind("autoscaling", "v2", "horizontalpodautoscalers"),
        "PodDisruptionBudget": Kind("policy", "v1", "poddisruptionbudgets"),
        "ServiceMonitor": Kind("monitoring.coreos.com", "v1", "servicemonitors"),
        "PrometheusRule": Kind("monitoring.coreos.com", "v1", "prometheusrules"),
    }
)


def _resource_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


def kube_configuration() -> client.Configuration:
    """Like kubectl: in-cluster config inside a Pod, else KUBECONFIG (read now) or ~/.kube/config."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0],
            client_configuration=configuration,
        )
    return configuration


def load_api_client() -> client.ApiClient:
    return client.ApiClient(kube_configuration())


def _same_quantity(desired: str, actual: str) -> bool:
    """`1000m` and `1`, `1024Mi` and `1Gi`: the API server stores a quantity in its canonical form."""
    try:
        return bool(parse_quantity(desired) == parse_quantity(actual))  # type: ignore[no-untyped-call]
    except ValueError:
        return False


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every field we set is already there (the server may add more, and canonicalises
    quantities)."""
    if isinstance(desired, str) and isinstance(actual, str) and desired != actual:
        return _same_quantity(desired, actual)
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(k in actual and is_subset(v, actual[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return bool(desired == actual)


FIELD_MANAGER = "ragcorp-operator"
_MANAGER = (("fieldManager", FIELD_MANAGER),)


def applied_digest(manifest: Manifest) -> str | None:
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    digest: str | None = annotations.get(APPLIED_ANNOTATION)
    return digest


def with_applied_digest(manifest: Manifest) -> Manifest:
    """The manifest with its own digest in an annotation (computed without it)."""
    bare = json.loads(json.dumps(manifest))
    annotations = bare["metadata"].setdefault("annotations", {})
    annotations.pop(APPLIED_ANNOTATION, None)
    annotations[APPLIED_ANNOTATION] = hashlib.sha256(json.dumps(bare, sort_keys=True).encode()).hexdigest()[:16]
    return dict(bare)


def _owns_replicas(existing: Manifest) -> bool:
    return any(
        entry.get("manager") == FIELD_MANAGER
        and entry.get("operation") == "Apply"
        and "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        for entry in (existing.get("metadata") or {}).get("managedFields") or []
    )


def _keeping_replicas(configuration: Manifest, existing: Manifest) -> Manifest:
    """Handing `replicas` to an HPA: a configuration that stops setting a field this manager owns
    removes it, and a Deployment without replicas is defaulted to 1. So while the operator still owns
    it, it applies the current count; the HPA's first change takes the field over, and from then on
    the operator leaves it out (the handover Kubernetes' server-side apply docs describe)."""
    if "replicas" in configuration["spec"] or not _owns_replicas(existing):
        return configuration
    current = (existing.get("spec") or {}).get("replicas")
    if current is None:
        return configuration
    return {**configuration, "spec": {**configuration["spec"], "replicas": current}}


class NotOurs(Exception):
    """A child's name is taken by an object the operator does not own: it is left alone."""


class Fenced(Exception):
    """This replica may no longer write: it lost leadership or is stopping (the write was not sent)."""


class Cluster:
    def __init__(self, api_client: client.ApiClient, fence: Callable[[], bool] | None = None) -> None:
        self._api = api_client
        self._kinds: dict[str, tuple[bool, float]] = {}
        #: True once writes must stop; asked before every write, so a pass running in a thread (which
        #: kopf cannot cancel) writes nothing after its replica was told to stop.
        self._fence = fence

    def fenced(self, fence: Callable[[], bool]) -> Cluster:
        """The same client, writing only while `fence()` is False (one reconciler's pass)."""
        view = Cluster(self._api, fence)
        view._kinds = self._kinds
        return view

    @property
    def api_client(self) -> client.ApiClient:
        return self._api

    def _path(self, kind: str, namespace: str, name: str | None = None) -> str:
        spec = KINDS[kind]
        base = f"/apis/{spec.group}/{spec.version}" if spec.group else f"/api/{spec.version}"
        path = f"{base}/namespaces/{namespace}/{spec.plural}"
        return f"{path}/{name}" if name else path

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Sequence[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if method != "GET" and self._fence is not None and self._fence():
            raise Fenced(f"{method} {path} not sent: this replica was told to stop")
        method, url, headers, serialized, _ = self._api.param_serialize(
            method,
            path,
            query_params=list(query or ()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(
            method, url, header_params=headers, body=serialized, _request_timeout=REQUEST_TIMEOUT
        )
        response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else None

    def get_resource(self, namespace: str, name: str) -> Manifest | None:
        """The RagCorpDeployment itself, or None once it is gone."""
        try:
            found: Manifest = self._call("GET", _resource_path(namespace, name))
            return found
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any], resource_version: str) -> Manifest:
        """Write the resource's status only if nothing changed since `resource_version` was read."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            patched: Manifest = self._call(
                "PATCH",
                _resource_path(namespace, name) + "/status",
                body=body,
                content_type="application/merge-patch+json",
            )
            return patched
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{namespace}/{name} changed since resourceVersion {resource_version}") from exc
            raise

    def release_finalizer(self, finalizer: str) -> list[str]:
        """Take `finalizer` off every RagCorpDeployment ("namespace/name" of each released). What the
        chart's post-delete hook runs: with no operator left to remove it, a resource deleted later
        (or its namespace) would stay Terminating for ever. A JSON patch tests the list it replaces,
        so a finalizer someone else adds meanwhile is never dropped (a 422 means read and try again)."""
        released = []
        for item in self.list_resources():
            meta = item["metadata"]
            for _ in range(5):
                finalizers = meta.get("finalizers") or []
                if finalizer not in finalizers:
                    break
                patch = [
                    {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                    {
                        "op": "replace",
                        "path": "/metadata/finalizers",
                        "value": [f for f in finalizers if f != finalizer],
                    },
                ]
                path = _resource_path(meta["namespace"], meta["name"])
                try:
                    self._call("PATCH", path, body=patch, content_type="application/json-patch+json")
                    released.append(f"{meta['namespace']}/{meta['name']}")
                    break
                except ApiException as exc:
                    if exc.status == 404:
                        break
                    if exc.status not in (409, 422):
                        raise
                    meta = (self.get_resource(meta["namespace"], meta["name"]) or {"metadata": {}})["metadata"]
        return released

    def list_resources(self, namespace: str | None = None, limit: int | None = None) -> list[Manifest]:
        """RagCorpDeployments in one namespace, or in all; at most `limit` of them when given."""
        where = f"/namespaces/{namespace}" if namespace else ""
        query = [("limit", str(limit))] if limit is not None else None
        items: list[Manifest] = self._call("GET", f"/apis/{GROUP}/{VERSION}{where}/{PLURAL}", query=query).get("items")
        return items or []

    def annotate(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        """Set (or, with None, remove) annotations on the resource, as `kubectl annotate` does."""
        self.merge_patch(namespace, name, {"metadata": {"annotations": annotations}})

    def merge_patch(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch of the resource, as `kubectl patch --type merge` sends."""
        self._call("PATCH", _resource_path(namespace, name), body=patch, content_type="application/merge-patch+json")

    def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        try:
            found: Manifest = self._call("GET", self._path(kind, namespace, name))
            return found
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        result = self._call("GET", self._path(kind, namespace), query=[("labelSelector", selector)])
        # Filter here too: a selector is a promise we keep even if a server (or emulator) ignores it.
        items: list[Manifest] = result.get("items") or []
        return [
            i for i in items if all((i.get("metadata", {}).get("labels") or {}).get(k) == v for k, v in labels.items())
        ]

    def kind_available(self, kind: str, namespace: str) -> bool:
        """Whether the cluster serves this kind (its CRD is installed); remembered for a minute."""
        now = time.monotonic()
        cached = self._kinds.get(kind)
        if cached is not None and now - cached[1] < KIND_CACHE_SECONDS:
            return cached[0]
        try:
            self._call("GET", self._path(kind, namespace), query=[("limit", "1")])
            available = True
        except ApiException as exc:
            if exc.status != 404:
                raise
            available = False
        self._kinds[kind] = (available, now)
        return available

    def apply(self, manifest: Manifest) -> Outcome:
        """Create, or bring an object of ours to the manifest; raises NotOurs for someone else's.

        Server-side apply with the operator's field manager: a field the operator set before and no
        longer sets (a nodeSelector, an env var, a credential) leaves the object, and fields other
        managers own (an HPA's replicas, a controller's defaults) stay. Jobs are created once and
        replaced, never patched: their pod template is immutable."""
        kind, meta = manifest["kind"], manifest["metadata"]
        existing = self.get(kind, meta["namespace"], meta["name"])
        owner = foreign_owner(manifest, existing) if existing is not None and owner_uid(manifest) else None
        if owner is not None:
            raise NotOurs(f"{kind} {meta['namespace']}/{meta['name']} exists and belongs to {owner}")
        if kind == "Job":
            return self._apply_job(manifest, existing)
        configuration = with_applied_digest(manifest)
        unchanged = existing is not None and applied_digest(existing) == applied_digest(configuration)
        if unchanged and is_subset(manifest, existing):
            return "unchanged"
        if kind == "Deployment" and existing is not None:
            configuration = _keeping_replicas(configuration, existing)
        self._call(
            "PATCH",
            self._path(kind, meta["namespace"], meta["name"]),
            body=configuration,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )
        return "created" if existing is None else "updated"

    def _apply_job(self, manifest: Manifest, existing: Manifest | None) -> Outcome:
        kind, meta = manifest["kind"], manifest["metadata"]
        if existing is None:
            self._call("POST", self._path(kind, meta["namespace"]), body=manifest, query=_MANAGER)
            return "created"
        if job_is_as_asked(manifest, existing):
            return "unchanged"
        # Still asked of Jobs too: one made before the digest annotation existed (an operator
        # upgraded mid-rollout) is kept when nothing we set differs, not replaced and run again.
        if is_subset(manifest, existing):
            return "unchanged"
        owner = owner_uid(manifest)
        if owner is not None and owner == owner_uid(existing) and not job_finished(existing):
            return "unchanged"  # a running Job of ours finishes as it started (a migration is not cut off)
        # A Job's pod template is immutable: the old one goes (its Pods with it) and the next pass creates.
        self.delete(kind, meta["namespace"], meta["name"])
        return "replaced"

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        try:
            self._call("DELETE", self._path(kind, namespace, name), body={"propagationPolicy": "Background"})
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
