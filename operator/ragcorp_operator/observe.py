"""Reading children into the rollout machine's terms (pure: dicts in, states out).

The Job contract: succeeded means `succeeded >= 1` or condition Complete; failed
means condition Failed (which covers a passed deadline and backoff exhaustion),
or the Job vanished after we created it. The schema revision comes from the
first container's termination message, `{"schemaRevision": "..."}`.
"""

from __future__ import annotations

import json
from typing import Any

from ragcorp_operator.rollout import DeploymentState, JobState


def deployment_state(manifest: dict[str, Any] | None) -> DeploymentState:
    if manifest is None:
        return DeploymentState()
    spec = manifest.get("spec", {})
    status = manifest.get("status") or {}
    containers = spec.get("template", {}).get("spec", {}).get("containers", [])
    return DeploymentState(
        exists=True,
        image=containers[0].get("image") if containers else None,
        replicas=int(spec.get("replicas", 1)),
        ready_replicas=int(status.get("readyReplicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
    )


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def schema_revision_from_pods(pods: list[dict[str, Any]]) -> str | None:
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((container.get("state") or {}).get("terminated") or {}).get("message")
            if message:
                try:
                    revision = json.loads(message.strip().splitlines()[-1]).get("schemaRevision")
                except (ValueError, AttributeError):
                    continue
                if isinstance(revision, str):
                    return revision
    return None


def job_state(job: dict[str, Any] | None, pods: list[dict[str, Any]], created_before: bool) -> JobState:
    if job is None:
        if created_before:
            return JobState("failed", message="the migration Job was deleted before it finished")
        return JobState("missing")
    failed = _condition(job, "Failed")
    if failed is not None:
        reason = failed.get("reason") or "Failed"
        return JobState("failed", message=f"{reason}: {failed.get('message') or 'the Job failed'}")
    status = job.get("status") or {}
    if int(status.get("succeeded") or 0) >= 1 or _condition(job, "Complete") is not None:
        revision = schema_revision_from_pods(pods)
        if revision is None:
            return JobState("failed", message="the migration Job succeeded but reported no schema revision")
        return JobState("succeeded", schema_revision=revision)
    return JobState("running")
