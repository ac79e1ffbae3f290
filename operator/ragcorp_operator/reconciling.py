"""One reconcile pass: read the resource and its children, decide, write.

Called by every kopf handler (create, update, resume, and the timer), so the
operator is level-triggered: whatever happened, the next pass moves the
resource one step towards its spec. The thinking is in `spec`, `rollout` and
`plan`; this module only reads and writes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ragcorp_operator.cluster import Cluster
from ragcorp_operator.conditions import Condition, merge_conditions
from ragcorp_operator.naming import (
    COLORS,
    INSTANCE_LABEL,
    REVISION_LABEL,
    deployment_name,
    job_name,
    name_problem,
    preview_service_name,
    selector,
)
from ragcorp_operator.observe import deployment_state, job_state, needs_pods
from ragcorp_operator.plan import PROMETHEUS_RULE, SERVICE_MONITOR, children, conditions, rollout_settings
from ragcorp_operator.prometheus import evaluate_gate
from ragcorp_operator.render.common import Owner
from ragcorp_operator.render.config import referenced_secrets
from ragcorp_operator.rollout import Event, GateResult, JobKind, JobState, Observed, Requests, RolloutState, decide
from ragcorp_operator.spec import RagSpec, SpecError, parse_spec

EventSink = Callable[[Event], None]
ANNOTATION_PREFIX = "ragcorp.dev/"
PROMOTE, ABORT, RETRY, ROLLBACK = (f"{ANNOTATION_PREFIX}{a}" for a in ("promote", "abort", "retry", "rollback"))
JOB_KINDS: tuple[JobKind, ...] = ("backup", "migrate", "smoke", "downgrade")
#: Jobs of this many recent revisions are kept (beyond their TTL) for `kubectl logs`.
JOB_REVISIONS_KEPT = 3
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@dataclass(frozen=True)
class Resource:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    status: dict[str, Any]
    #: One-shot annotations acted on; the caller removes them.
    clear_annotations: tuple[str, ...] = ()


def _rollback_request(spec: RagSpec) -> dict[str, Any] | None:
    return spec.rollback.model_dump(by_alias=True) if spec.rollback is not None else None


def _handled_rollback(status: dict[str, Any], spec: RagSpec) -> dict[str, Any] | None:
    """The `spec.rollback` last acted on. A request is its content, not the generation it was seen
    at: any later spec edit bumps the generation, and must not fire a stale rollback again. (Status
    written by an older operator recorded only a generation: its request counts as handled.)"""
    if "handledRollback" not in status and status.get("handledRollbackGeneration") is not None:
        return _rollback_request(spec)
    handled = status.get("handledRollback")
    return handled if isinstance(handled, dict) else None


def requests_from(resource: Resource, spec: RagSpec) -> Requests:
    """Annotations and a new `spec.rollback` as one-shot requests (pure)."""
    annotations = resource.annotations
    rollback_to: int | None = None
    raw = annotations.get(ROLLBACK)
    if raw is not None:
        rollback_to = 0 if raw.strip() in ("", "previous") else int(raw) if raw.strip().isdigit() else -1
    elif spec.rollback is not None and _handled_rollback(resource.status, spec) != _rollback_request(spec):
        rollback_to = spec.rollback.to_revision
    return Requests(
        promote=PROMOTE in annotations,
        abort=ABORT in annotations,
        retry=RETRY in annotations,
        rollback_to=rollback_to,
    )


def _missing_secret(cluster: Cluster, namespace: str, spec: RagSpec) -> Condition | None:
    for ref in referenced_secrets(spec):
        secret = cluster.get("Secret", namespace, ref.name)
        if secret is None:
            return Condition("Degraded", "True", "SecretNotFound", f"Secret {namespace}/{ref.name} does not exist")
        if ref.key not in (secret.get("data") or {}) and ref.key not in (secret.get("stringData") or {}):
            return Condition(
                "Degraded", "True", "SecretKeyNotFound", f"Secret {namespace}/{ref.name} has no key {ref.key!r}"
            )
    return None


def _problem_status(resource: Resource, problem: Condition, now: datetime) -> dict[str, Any]:
    previous = resource.status.get("conditions") or []
    kept = [c for c in previous if isinstance(c, dict) and c.get("type") != "Degraded"]
    as_conditions = [Condition(c["type"], c["status"], c.get("reason", ""), c.get("message", "")) for c in kept]
    return {
        "observedGeneration": resource.generation,
        "conditions": merge_conditions(previous, [*as_conditions, problem], now),
    }


def _jobs(cluster: Cluster, resource: Resource, revision: int) -> dict[JobKind, JobState]:
    """This revision's Jobs, by kind: one list call, and Pods read only where a report matters."""
    created = set(resource.status.get("createdJobs") or [])
    listed = cluster.list("Job", resource.namespace, {INSTANCE_LABEL: resource.name, REVISION_LABEL: str(revision)})
    by_name = {job["metadata"]["name"]: job for job in listed}
    states: dict[JobKind, JobState] = {}
    for kind in JOB_KINDS:
        name = job_name(resource.name, kind, revision)
        job = by_name.get(name)
        pods = cluster.list("Pod", resource.namespace, {"job-name": name}) if needs_pods(kind, job) else []
        states[kind] = job_state(kind, job, pods, created_before=name in created)
    return states


def _gate(spec: RagSpec, resource: Resource, state: RolloutState) -> GateResult | None:
    gate = spec.strategy.blue_green.metric_gate
    if not gate.enabled or state.phase != "Verifying":
        return None
    return evaluate_gate(
        gate.prometheus_url,
        resource.namespace,
        preview_service_name(resource.name),
        gate.window_seconds,
        gate.max_error_rate,
        gate.max_p95_seconds,
    )


def _finished(job: dict[str, Any]) -> bool:
    status = job.get("status") or {}
    done = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    return bool(done & {"Complete", "Failed"}) or int(status.get("succeeded") or 0) >= 1


def _clean_old_jobs(cluster: Cluster, resource: Resource, revision: int, emit: EventSink) -> None:
    """Stop the unfinished Jobs of superseded revisions (never two migrations at once), and
    delete finished ones older than JOB_REVISIONS_KEPT revisions."""
    for job in cluster.list("Job", resource.namespace, {INSTANCE_LABEL: resource.name}):
        labels = job.get("metadata", {}).get("labels") or {}
        job_revision = labels.get(REVISION_LABEL, "")
        if not job_revision.isdigit() or int(job_revision) >= revision:
            continue
        stale = int(job_revision) <= revision - JOB_REVISIONS_KEPT
        if (stale or not _finished(job)) and cluster.delete("Job", resource.namespace, job["metadata"]["name"]):
            why = "superseded" if not stale else f"older than {JOB_REVISIONS_KEPT} revisions"
            emit(Event("Normal", "Deleted", f"deleted Job {job['metadata']['name']} ({why})"))


def reconcile(cluster: Cluster, resource: Resource, emit: EventSink, now: datetime | None = None) -> Outcome:
    """Move the resource one step; return the status patch and the requests handled."""
    now = now or datetime.now(UTC)
    with _locks[resource.uid]:
        try:
            bad_name = name_problem(resource.name)
            if bad_name:
                raise SpecError(bad_name)
            spec = parse_spec(resource.spec)
        except SpecError as exc:
            problem = Condition("Degraded", "True", "InvalidSpec", str(exc))
            emit(Event("Warning", "InvalidSpec", str(exc)))
            return Outcome(_problem_status(resource, problem, now))
        missing = _missing_secret(cluster, resource.namespace, spec)
        if missing is not None:
            if (resource.status.get("failureMessage") or "") != missing.message:
                emit(Event("Warning", missing.reason, missing.message))
            return Outcome({**_problem_status(resource, missing, now), "failureMessage": missing.message})

        state = RolloutState.from_status(resource.status)
        owner = Owner(resource.name, resource.namespace, resource.uid)
        deployments = {
            color: deployment_state(
                cluster.get("Deployment", resource.namespace, deployment_name(resource.name, color))
            )
            for color in COLORS
        }
        settings = rollout_settings(spec)
        requests = requests_from(resource, spec)
        jobs = _jobs(cluster, resource, state.revision) if state.revision else {}
        decision = decide(Observed(settings, state, deployments, jobs, now, _gate(spec, resource, state), requests))
        for event in decision.events:
            emit(event)

        monitoring = frozenset(
            kind for kind in (SERVICE_MONITOR, PROMETHEUS_RULE) if cluster.kind_available(kind[1], resource.namespace)
        )
        plan = children(owner, spec, decision.intent, monitoring)
        for manifest in plan.apply:
            outcome = cluster.apply(manifest)
            if outcome != "unchanged":
                kind, name = manifest["kind"], manifest["metadata"]["name"]
                emit(Event("Normal", outcome.capitalize(), f"{outcome} {kind} {name}"))
        for ref in plan.delete:
            if cluster.delete(ref.kind, resource.namespace, ref.name):
                emit(Event("Normal", "Deleted", f"deleted {ref.kind} {ref.name}"))
        new_state = decision.state
        if new_state.revision != state.revision:
            _clean_old_jobs(cluster, resource, new_state.revision, emit)

        active = deployments[new_state.active_color] if new_state.active_color else None
        active_ready = bool(
            active and new_state.active_image and active.ready_at(new_state.active_image, settings.replicas)
        )
        created_jobs = [job_name(resource.name, j.kind, j.revision) for j in decision.intent.jobs]
        if new_state.revision == state.revision:
            created_jobs = sorted(set(resource.status.get("createdJobs") or []) | set(created_jobs))
        status: dict[str, Any] = {
            **new_state.to_status(),
            "readyReplicas": active.ready_replicas if active else 0,
            "replicas": active.replicas if active else 0,
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector(resource.name).items())),
            "observedGeneration": resource.generation,
            "failureMessage": None,
            "createdJobs": created_jobs,
            "conditions": merge_conditions(
                resource.status.get("conditions") or [], conditions(decision, active_ready), now
            ),
        }
        # Cleared when spec.rollback goes: setting the same request again asks again.
        status["handledRollback"] = _rollback_request(spec)
        status["handledRollbackGeneration"] = None
        handled = decision.handled
        cleared = [
            key
            for key, asked in (
                (PROMOTE, handled.promote),
                (ABORT, handled.abort),
                (RETRY, handled.retry),
                (ROLLBACK, handled.rollback_to is not None),
            )
            if asked and key in resource.annotations
        ]
        return Outcome(status, tuple(cleared))
