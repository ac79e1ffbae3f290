"""`kubectl ragcorp get NAME`: the resource as a tree (resource -> colours -> Pods, and its Jobs),
as Argo Rollouts' `kubectl argo rollouts get rollout` draws one, and the analysis results that
`status` shows too.

Pure: the plugin reads the objects (the resource, its two Deployments, their Pods, its Jobs) and
these functions only lay them out, so what a person sees is what the API server holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ragcorp_operator.child_status import job_finished, job_succeeded
from ragcorp_operator.naming import COLORS, JOB_KIND_LABEL, REVISION_LABEL, Color
from ragcorp_operator.rollout_health import health

Object = dict[str, Any]


def _tag(image: str | None) -> str:
    """The part of an image a person tells revisions apart by: its tag (or digest)."""
    if not image:
        return "-"
    last = image.rsplit("/", 1)[-1]
    return last.split("@", 1)[1][:19] if "@" in last else (last.split(":", 1)[1] if ":" in last else last)


def _role(status: dict[str, Any], color: str) -> str:
    """What the colour is to the rollout now (one word): the previous colour is one only while it
    still serves after the switch."""
    if status.get("activeColor") == color:
        return "active"
    if status.get("previewColor") == color:
        return "preview"
    if status.get("targetColor") == color:
        return "target"
    if status.get("phase") == "ScalingDown" and status.get("previousColor") == color:
        return "previous"
    return ""


def _deployment_row(deployment: Object | None, role: str) -> tuple[str, str, str]:
    if deployment is None:
        return "Deployment", "absent", ""
    spec, observed = deployment.get("spec") or {}, deployment.get("status") or {}
    containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or [{}]
    wanted, ready = spec.get("replicas", 0), observed.get("readyReplicas", 0)
    state = role or ("scaled down" if wanted == 0 else "standby")
    return "Deployment", state, f"{_tag(containers[0].get('image'))}  {ready}/{wanted} ready"


def _pod_row(pod: Object) -> tuple[str, str, str]:
    observed = pod.get("status") or {}
    containers = observed.get("containerStatuses") or []
    ready = bool(containers) and all(c.get("ready") for c in containers)
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    phase = "Terminating" if (pod.get("metadata") or {}).get("deletionTimestamp") else observed.get("phase", "Pending")
    waiting = next((((c.get("state") or {}).get("waiting") or {}).get("reason") for c in containers), None)
    info = ("ready" if ready else "not ready") + (f", {restarts} restarts" if restarts else "")
    return "Pod", str(waiting or phase), info


def _job_row(job: Object) -> tuple[str, str, str]:
    """Done as the operator judges Jobs (`child_status`), else running or waiting for a Pod."""
    if job_succeeded(job):
        state = "Succeeded"
    elif job_finished(job):
        state = "Failed"
    else:
        state = "Running" if (job.get("status") or {}).get("active") else "Pending"
    labels = (job.get("metadata") or {}).get("labels") or {}
    return "Job", state, f"{labels.get(JOB_KIND_LABEL, '')} of revision {labels.get(REVISION_LABEL, '?')}"


def _name(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def format_tree(
    resource: Object, deployments: Mapping[Color, Object | None], pods: Mapping[Color, list[Object]], jobs: list[Object]
) -> str:
    """The resource, each colour's Deployment with its Pods, and the Jobs, newest revision first."""
    status = resource.get("status") or {}
    verdict = health(resource)
    rows: list[tuple[str, str, str, str]] = [
        (_name(resource), "RagCorpDeployment", verdict.verdict, f"revision {status.get('revision', 0)}")
    ]
    branches: list[tuple[tuple[str, str, str, str], list[tuple[str, str, str, str]]]] = []
    for color in COLORS:
        deployment = deployments.get(color)
        name = _name(deployment) if deployment else f"{_name(resource)}-{color}"
        kind, state, info = _deployment_row(deployment, _role(status, color))
        children = [(_name(pod), *_pod_row(pod)) for pod in sorted(pods.get(color, []), key=_name)]
        branches.append(((f"{name} ({color})", kind, state, info), children))
    if jobs:
        ordered = sorted(
            jobs, key=lambda j: (-int((j["metadata"].get("labels") or {}).get(REVISION_LABEL) or 0), _name(j))
        )
        branches.append((("Jobs", "", "", ""), [(_name(job), *_job_row(job)) for job in ordered]))
    for index, (head, children) in enumerate(branches):
        last = index == len(branches) - 1
        rows.append((("└── " if last else "├── ") + head[0], *head[1:]))
        for child_index, child in enumerate(children):
            joint = "└── " if child_index == len(children) - 1 else "├── "
            rows.append((("    " if last else "│   ") + joint + child[0], *child[1:]))
    widths = [max(len(row[column]) for row in [("NAME", "KIND", "STATUS", ""), *rows]) + 2 for column in range(3)]

    def line(name: str, kind: str, state: str, info: str) -> str:
        return f"{name:<{widths[0]}}{kind:<{widths[1]}}{state:<{widths[2]}}{info}".rstrip()

    table = [line("NAME", "KIND", "STATUS", "INFO"), *(line(*row) for row in rows)]
    header = [
        f"Name:        {_name(resource)}",
        f"Namespace:   {(resource.get('metadata') or {}).get('namespace', '')}",
        f"Status:      {verdict.verdict}: {verdict.message}",
        f"Phase:       {status.get('phase', 'Pending')}  (schema {status.get('schemaRevision') or '-'})",
        f"Active:      {status.get('activeColor') or '-'}  {status.get('activeImage') or '-'}",
    ]
    if status.get("targetImage"):
        header.append(f"Target:      {status.get('targetColor') or '-'}  {status['targetImage']}")
    return "\n".join([*header, *format_analysis(status), "", *table])


def format_analysis(status: dict[str, Any]) -> list[str]:
    """The latest revision's analysis runs: each check's phase, counts and last value."""
    lines: list[str] = []
    for run in status.get("analysis") or []:
        lines.append(f"Analysis:    {run.get('stage')} of revision {run.get('revision')}")
        for check in run.get("metrics") or []:
            value = check.get("lastValue")
            last = (
                f"last {value:g}" if isinstance(value, (int, float)) else (check.get("lastError") or "not measured yet")
            )
            dry = " (dry run)" if check.get("dryRun") else ""
            ok, failed, unsure = (check.get(key, 0) for key in ("successful", "failed", "inconclusive"))
            counts = f"{ok} ok, {failed} failed, {unsure} inconclusive"
            lines.append(f"  {check.get('name', ''):<24} {check.get('phase', ''):<12}{dry} {counts}; {last}")
    return lines
