"""Reading children into the rollout machine's terms (pure: dicts in, states out).

The Job contract: succeeded means `succeeded >= 1` or condition Complete; failed
means condition Failed (which covers a passed deadline and backoff exhaustion),
or the Job vanished after we created it. What a finished Job reported depends
on its kind, because each runs a different program:

- `migrate` and `downgrade` run `ragcorp-service db upgrade|downgrade`, which
  writes `{"schemaRevision": "..."}` to the termination log; a success without
  it is a failure (the operator cannot know the schema it would promote onto).
- `smoke` runs `ragcorp-service smoke`, which writes its verdict
  `{"smoke": "passed"|"failed", "detail": ...}`; the detail explains a failure.
- `backup` runs `pg_dump` in a shell and writes nothing: its exit status is all.
"""

from __future__ import annotations

import json
from typing import Any

from ragcorp_operator.naming import INSTANCE_LABEL, TEMPLATE_HASH_ANNOTATION
from ragcorp_operator.rollout import DeploymentState, JobKind, JobState

#: The kinds whose success must come with a schema revision.
REPORTS_SCHEMA: frozenset[JobKind] = frozenset({"migrate", "downgrade"})


def deployment_state(manifest: dict[str, Any] | None) -> DeploymentState:
    if manifest is None:
        return DeploymentState()
    spec = manifest.get("spec", {})
    status = manifest.get("status") or {}
    pod = spec.get("template", {}).get("spec", {})
    containers = pod.get("containers", [])
    return DeploymentState(
        exists=True,
        image=containers[0].get("image") if containers else None,
        replicas=int(spec.get("replicas", 1)),
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        total_replicas=int(status.get("replicas") or 0),
        generation=int(manifest.get("metadata", {}).get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        mounts_token=pod.get("automountServiceAccountToken") is not False,
    )


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def job_succeeded(job: dict[str, Any]) -> bool:
    """`succeeded >= 1` or the Complete condition: the Job controller's word for done well."""
    return int((job.get("status") or {}).get("succeeded") or 0) >= 1 or _condition(job, "Complete") is not None


def job_is_as_asked(desired: dict[str, Any], existing: dict[str, Any]) -> bool:
    """Whether an existing Job is the one the desired manifest asks for, by the digest of the spec
    asked for (not by the stored spec, which the API server canonicalised)."""

    def asked(job: dict[str, Any]) -> str | None:
        return ((job.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_HASH_ANNOTATION)

    return asked(desired) is not None and asked(desired) == asked(existing)


def job_finished(job: dict[str, Any]) -> bool:
    """Complete or Failed: its Pods are done with it."""
    return job_succeeded(job) or _condition(job, "Failed") is not None


def termination_reports(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON objects the Job's Pods left as termination messages (their last line each)."""
    reports = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((container.get("state") or {}).get("terminated") or {}).get("message")
            if not message or not message.strip():
                continue
            try:
                report = json.loads(message.strip().splitlines()[-1])
            except ValueError:
                continue
            if isinstance(report, dict):
                reports.append(report)
    return reports


def schema_revision_from_pods(pods: list[dict[str, Any]]) -> str | None:
    for report in termination_reports(pods):
        revision = report.get("schemaRevision")
        if isinstance(revision, str):
            return revision
    return None


def smoke_detail_from_pods(pods: list[dict[str, Any]]) -> str | None:
    for report in termination_reports(pods):
        if "smoke" in report:
            return str(report.get("detail") or report["smoke"])
    return None


def job_state(kind: JobKind, job: dict[str, Any] | None, pods: list[dict[str, Any]], created_before: bool) -> JobState:
    """One Job's outcome; `pods` matter only for a finished migrate/downgrade (the revision)
    and a failed smoke test (why it failed)."""
    if job is None:
        if created_before:
            return JobState("failed", message=f"the {kind} Job was deleted before it finished")
        return JobState("missing")
    failed = _condition(job, "Failed")
    if failed is not None:
        reason = failed.get("reason") or "Failed"
        message = f"{reason}: {failed.get('message') or 'the Job failed'}"
        detail = smoke_detail_from_pods(pods) if kind == "smoke" else None
        return JobState("failed", message=f"{message}; {detail}" if detail else message)
    if job_succeeded(job):
        if kind not in REPORTS_SCHEMA:
            return JobState("succeeded")
        revision = schema_revision_from_pods(pods)
        if revision is None:
            return JobState("failed", message=f"the {kind} Job succeeded but reported no schema revision")
        return JobState("succeeded", schema_revision=revision)
    return JobState("running")


def needs_pods(kind: JobKind, job: dict[str, Any] | None) -> bool:
    """Whether `job_state` needs this Job's Pods: read them only then (a LIST per Job is not free)."""
    if job is None:
        return False
    if kind in REPORTS_SCHEMA:
        return job_succeeded(job)
    return kind == "smoke" and _condition(job, "Failed") is not None


#: The owner's kind in a child's ownerReferences.
OWNER_KIND = "RagCorpDeployment"


def foreign_owner(desired: dict[str, Any], existing: dict[str, Any]) -> str | None:
    """Who else an existing object belongs to, or None when it is ours to write.

    Ours: owned by a RagCorpDeployment of our name (this one, or an earlier one of the same name
    whose children the garbage collector has not reached), or owned by nothing but labelled as
    this instance's (what `ragcorp-operator render` printed and someone applied). Anything else —
    another resource's child (an RCD named `x-preview` and the preview Service of RCD `x` share a
    name), or an object someone made by hand — is not silently adopted."""
    meta = existing.get("metadata") or {}
    ours = (desired.get("metadata") or {}).get("labels", {}).get(INSTANCE_LABEL)
    refs = meta.get("ownerReferences") or []
    for ref in refs:
        if ref.get("kind") == OWNER_KIND:
            return None if ref.get("name") == ours else f"{OWNER_KIND} {ref.get('name')}"
    if refs:
        return f"{refs[0].get('kind')} {refs[0].get('name')}"
    return None if (meta.get("labels") or {}).get(INSTANCE_LABEL) == ours else "nobody (made outside the operator)"


def owner_uid(manifest: dict[str, Any]) -> str | None:
    for ref in manifest.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == OWNER_KIND and ref.get("uid"):
            return str(ref["uid"])
    return None


def _finish(job: dict[str, Any]) -> str:
    if _condition(job, "Failed") is not None:
        return "failed"
    return "succeeded" if job_succeeded(job) else "running"


def child_signature(kind: str, manifest: dict[str, Any]) -> tuple[str, str]:
    """What of a child its owner reacts to, as (progress, shape).

    A change of progress (a Job finishing, a Deployment's replica counts) asks for a pass; a
    change of shape (someone edited or deleted what the operator wrote) asks for a full pass
    that repairs it. Everything else (a Job's Pod counts, timestamps) wakes nobody."""
    meta = manifest.get("metadata", {})
    deleting = "deleting" if meta.get("deletionTimestamp") else ""
    if kind == "Job":
        return f"{_finish(manifest)}{deleting}", ""
    status = manifest.get("status") or {}
    shape = json.dumps([manifest.get("spec"), manifest.get("data"), meta.get("labels")], sort_keys=True, default=str)
    if kind == "Deployment":
        counts = [
            status.get(key) or 0
            for key in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
        ]
        return f"{counts}{meta.get('generation')}{deleting}", shape
    return deleting, shape
