"""One-shot requests: the `ragcorp.dev/{promote,abort,retry,rollback}` annotations and `spec.rollback`.

A request is its content, never the moment it was seen. An annotation's value is
its id (`kubectl ragcorp` writes a fresh one each time); the reconciler records
the ids it acted on in `status.handledRequests` *before* it removes the
annotations, so an annotation whose removal was lost is recognised as handled
and never fires twice. An id is forgotten once its annotation is gone, so the
same value set again later is a new request. `spec.rollback` is handled once per
content (`status.handledRollback`): later edits of other fields bump the
generation and must not fire a stale rollback again. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragcorp_operator.rollout import Requests
from ragcorp_operator.spec import RagSpec

ANNOTATION_PREFIX = "ragcorp.dev/"
PROMOTE, ABORT, RETRY, ROLLBACK = (f"{ANNOTATION_PREFIX}{a}" for a in ("promote", "abort", "retry", "rollback"))
REQUEST_ANNOTATIONS = (PROMOTE, ABORT, RETRY, ROLLBACK)


@dataclass(frozen=True)
class Resource:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    annotations: dict[str, str] = field(default_factory=dict)
    resource_version: str = ""

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Resource:
        meta = body.get("metadata") or {}
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid") or "",
            generation=int(meta.get("generation") or 0),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            annotations=dict(meta.get("annotations") or {}),
            resource_version=str(meta.get("resourceVersion") or ""),
        )


def rollback_request(spec: RagSpec) -> dict[str, Any] | None:
    return spec.rollback.model_dump(by_alias=True) if spec.rollback is not None else None


def _handled_rollback(status: dict[str, Any], spec: RagSpec) -> dict[str, Any] | None:
    if "handledRollback" not in status and status.get("handledRollbackGeneration") is not None:
        return rollback_request(spec)  # an older operator recorded only a generation: handled
    handled = status.get("handledRollback")
    return handled if isinstance(handled, dict) else None


def pending_annotations(resource: Resource) -> dict[str, str]:
    """The request annotations present and not yet acted on, with their ids."""
    handled = resource.status.get("handledRequests") or {}
    return {
        key: value
        for key in REQUEST_ANNOTATIONS
        if (value := resource.annotations.get(key)) is not None and handled.get(key) != value
    }


def requests_from(resource: Resource, spec: RagSpec) -> Requests:
    """The new requests, as the rollout machine takes them."""
    pending = pending_annotations(resource)
    rollback_to: int | None = None
    raw = pending.get(ROLLBACK)
    if raw is not None:
        rollback_to = 0 if raw.strip() in ("", "previous") else int(raw) if raw.strip().isdigit() else -1
    elif (
        ROLLBACK not in resource.annotations
        and spec.rollback is not None
        and _handled_rollback(resource.status, spec) != rollback_request(spec)
    ):
        rollback_to = spec.rollback.to_revision
    return Requests(
        promote=PROMOTE in pending,
        abort=ABORT in pending,
        retry=RETRY in pending,
        rollback_to=rollback_to,
    )


def handled_ids(resource: Resource) -> dict[str, str]:
    """`status.handledRequests` after this pass: every request annotation still present is handled
    (each pass acts on all of them), and ids of annotations already gone are forgotten."""
    return {key: value for key in REQUEST_ANNOTATIONS if (value := resource.annotations.get(key)) is not None}
