"""One reconcile pass: read the resource and its children, decide, write the status, then the children.

Only the resource's reconciler (one per resource, see `handlers`) calls it, so
no two passes over one resource ever overlap. The order of the writes is the
point: the status goes first, with the `resourceVersion` it was computed from as
a precondition, and children only after it landed. A pass that read stale state
loses the race (409) and starts over from a fresh read; a crash between the two
writes leaves a status the next pass reaches the same decision from, so children
never run ahead of a status that could be lost. The thinking is in `spec`,
`rollout`, `plan` and `user_requests`; this module only reads and writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ragcorp_operator.cluster import Cluster, Conflict, NotOurs, is_subset
from ragcorp_operator.conditions import Condition
from ragcorp_operator.naming import (
    COLOR_LABEL,
    COLORS,
    INSTANCE_LABEL,
    JOB_KIND_LABEL,
    REVISION_LABEL,
    active_service_name,
    deployment_name,
    job_name,
    name_problem,
    preview_service_name,
)
from ragcorp_operator.observe import deployment_state, job_finished, job_state, needs_pods, owner_uid
from ragcorp_operator.plan import (
    PROMETHEUS_RULE,
    SERVICE_MONITOR,
    Plan,
    children,
    invalid_spec_status,
    rollout_settings,
    rollout_status,
)
from ragcorp_operator.prometheus import evaluate_gate
from ragcorp_operator.render.common import Owner
from ragcorp_operator.render.config import referenced_secrets
from ragcorp_operator.rollout import (
    Event,
    GateResult,
    JobKind,
    JobState,
    Observed,
    RolloutState,
    decide,
    next_wakeup,
)
from ragcorp_operator.spec import RagSpec, SpecError, parse_spec
from ragcorp_operator.user_requests import (
    REQUEST_ANNOTATIONS,
    Resource,
    handled_ids,
    requests_from,
    rollback_request,
)

EventSink = Callable[[dict[str, Any], Event], None]
JOB_KINDS: tuple[JobKind, ...] = ("backup", "migrate", "smoke", "downgrade")
#: The phases that wait on a Job of the current revision: only they list Jobs.
WAITS_ON_JOBS = frozenset({"BackingUp", "Migrating", "Verifying", "Downgrading"})
#: Jobs of this many recent revisions are kept (beyond their TTL) for `kubectl logs`.
JOB_REVISIONS_KEPT = 3
SCHEMA_JOBS = ("migrate", "downgrade")
#: A missing Secret has no event to wake us when it appears: look again this often.
SECRET_POLL = timedelta(seconds=10)
#: After replacing a Job (delete, then create): look again this soon.
REPLACE_POLL = timedelta(seconds=1)
CONFLICT_RETRIES = 5
PassOutcome = Literal["ok", "degraded", "gone"]


@dataclass
class Memory:
    """What a resource's reconciler remembers between passes. Losing it (a restart, a takeover)
    costs one full pass, nothing more: everything that matters is in the status."""

    #: A digest of the last plan written: an unchanged plan is not written again until a resync.
    applied_plan: str | None = None
    #: The Secret problem found at `secrets_generation`. Secrets are read on full passes, spec changes,
    #: and every pass while one is missing (nothing else would tell us it appeared).
    secret_problem: SecretProblem | None = None
    secrets_generation: int = -1
    #: A child whose name someone else's object holds (reported as Degraded until it is gone).
    ownership_problem: Condition | None = None
    #: Children the plan deletes that are known to be gone: not deleted again (a 404 each pass).
    gone: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class PassResult:
    outcome: PassOutcome
    #: How long until time alone could change the decision (None: only an event can).
    wake_after: timedelta | None = None
    requests: int = 0


@dataclass
class _Reads:
    jobs: dict[JobKind, JobState] = field(default_factory=dict)
    job_names: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class SecretProblem:
    condition: Condition
    secret: str


def _missing_secret(cluster: Cluster, namespace: str, spec: RagSpec) -> SecretProblem | None:
    for ref in referenced_secrets(spec):
        secret = cluster.get("Secret", namespace, ref.name)
        if secret is None:
            message = f"Secret {namespace}/{ref.name} does not exist"
            return SecretProblem(Condition("Degraded", "True", "SecretNotFound", message), ref.name)
        if ref.key not in (secret.get("data") or {}) and ref.key not in (secret.get("stringData") or {}):
            message = f"Secret {namespace}/{ref.name} has no key {ref.key!r}"
            return SecretProblem(Condition("Degraded", "True", "SecretKeyNotFound", message), ref.name)
    return None


def _reads_secret(job: dict[str, Any], secret: str) -> bool:
    """Whether a Job's Pods need this Secret to start (env, envFrom, volumes)."""
    pod = job["spec"]["template"]["spec"]
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        for env in container.get("env") or []:
            if ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == secret:
                return True
        if any((source.get("secretRef") or {}).get("name") == secret for source in container.get("envFrom") or []):
            return True
    return any((volume.get("secret") or {}).get("secretName") == secret for volume in pod.get("volumes") or [])


def _jobs(cluster: Cluster, resource: Resource, revision: int, seen: set[str]) -> _Reads:
    """This revision's Jobs, by kind: one list call, and Pods read only where a report matters."""
    listed = cluster.list("Job", resource.namespace, {INSTANCE_LABEL: resource.name, REVISION_LABEL: str(revision)})
    # A Job counts only if this very resource made it: a re-created resource of the same name
    # must not take an old `-migrate-1` as its own.
    by_name = {job["metadata"]["name"]: job for job in listed if owner_uid(job) == resource.uid}
    reads = _Reads(job_names=set(by_name))
    for kind in JOB_KINDS:
        name = job_name(resource.name, kind, revision)
        job = by_name.get(name)
        pods = cluster.list("Pod", resource.namespace, {"job-name": name}) if needs_pods(kind, job) else []
        reads.jobs[kind] = job_state(kind, job, pods, created_before=name in seen)
    return reads


def _gate(spec: RagSpec, resource: Resource, state: RolloutState) -> GateResult | None:
    """The metric gate on the preview Service while verifying, and on the active one after the
    switch (the post-promotion gate); not asked otherwise."""
    gate = spec.strategy.blue_green.metric_gate
    if not gate.enabled:
        return None
    if state.phase == "Verifying":
        service = preview_service_name(resource.name)
    elif state.phase == "ScalingDown" and not state.verified_after_promotion:
        service = active_service_name(resource.name)
    else:
        return None
    return evaluate_gate(
        gate.prometheus_url,
        resource.namespace,
        service,
        gate.window_seconds,
        gate.max_error_rate,
        gate.max_p95_seconds,
    )


def _schema_job_elsewhere(cluster: Cluster, resource: Resource, own: str) -> bool:
    """Whether another migration or downgrade of this resource may still touch the schema: an
    unfinished Job of another revision, or a Pod of one still running (a deleted Job's Pods
    outlive it until they stop)."""
    labels = {INSTANCE_LABEL: resource.name}
    for job in cluster.list("Job", resource.namespace, labels):
        meta = job["metadata"]
        schema_job = (meta.get("labels") or {}).get(JOB_KIND_LABEL) in SCHEMA_JOBS
        if schema_job and meta["name"] != own and not job_finished(job):
            return True
    for pod in cluster.list("Pod", resource.namespace, labels):
        meta = pod["metadata"]
        schema_job = (meta.get("labels") or {}).get(JOB_KIND_LABEL) in SCHEMA_JOBS
        running = (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        if schema_job and (meta.get("labels") or {}).get("job-name") != own and running:
            return True
    return False


def _clean_old_jobs(cluster: Cluster, resource: Resource, revision: int, emit: Callable[[Event], None]) -> None:
    """Stop the unfinished Jobs of superseded revisions, and delete finished ones older than
    JOB_REVISIONS_KEPT revisions."""
    for job in cluster.list("Job", resource.namespace, {INSTANCE_LABEL: resource.name}):
        labels = job.get("metadata", {}).get("labels") or {}
        job_revision = labels.get(REVISION_LABEL, "")
        if not job_revision.isdigit() or int(job_revision) >= revision:
            continue
        stale = int(job_revision) <= revision - JOB_REVISIONS_KEPT
        if (stale or not job_finished(job)) and cluster.delete("Job", resource.namespace, job["metadata"]["name"]):
            why = "superseded" if not stale else f"older than {JOB_REVISIONS_KEPT} revisions"
            emit(Event("Normal", "Deleted", f"deleted Job {job['metadata']['name']} ({why})"))


def _unchanged(status: dict[str, Any], current: dict[str, Any]) -> bool:
    return all(
        (current.get(key) is None) if value is None else is_subset(value, current.get(key))
        for key, value in status.items()
    )


def _digest(plan: Plan) -> str:
    text = json.dumps([plan.apply, [vars(ref) for ref in plan.delete]], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class _Pass:
    """One attempt at a pass over a freshly read resource."""

    def __init__(self, cluster: Cluster, body: dict[str, Any], memory: Memory, full: bool, sink: EventSink) -> None:
        self.cluster, self.body, self.memory, self.full = cluster, body, memory, full
        self.resource = Resource.from_body(body)
        self.now = datetime.now(UTC)
        self._sink = sink

    def emit(self, event: Event) -> None:
        self._sink(self.body, event)

    def write_status(self, status: dict[str, Any]) -> None:
        if not _unchanged(status, self.resource.status):
            self.cluster.patch_status(
                self.resource.namespace, self.resource.name, status, self.resource.resource_version
            )

    def run(self) -> PassResult:
        resource = self.resource
        try:
            bad_name = name_problem(resource.name)
            if bad_name:
                raise SpecError(bad_name)
            spec = parse_spec(resource.spec)
        except SpecError as exc:
            self.write_status(invalid_spec_status(resource.status, str(exc), self.now))
            if resource.status.get("failureMessage") != str(exc):  # one Event per distinct problem
                self.emit(Event("Warning", "InvalidSpec", str(exc)))
            return PassResult("degraded")
        memory = self.memory
        if self.full or memory.secrets_generation != resource.generation or memory.secret_problem is not None:
            memory.secret_problem = _missing_secret(self.cluster, resource.namespace, spec)
            memory.secrets_generation = resource.generation
        problem = memory.secret_problem.condition if memory.secret_problem else memory.ownership_problem

        state = RolloutState.from_status(resource.status)
        deployments = {
            color: deployment_state(
                self.cluster.get("Deployment", resource.namespace, deployment_name(resource.name, color))
            )
            for color in COLORS
        }
        settings = rollout_settings(spec)
        seen = set(resource.status.get("createdJobs") or [])
        reads = _jobs(self.cluster, resource, state.revision, seen) if state.phase in WAITS_ON_JOBS else _Reads()
        elsewhere = False
        if state.phase in ("Migrating", "Downgrading"):
            own_kind: JobKind = "migrate" if state.phase == "Migrating" else "downgrade"
            if reads.jobs.get(own_kind, JobState()).phase == "missing":
                elsewhere = _schema_job_elsewhere(
                    self.cluster, resource, job_name(resource.name, own_kind, state.revision)
                )
        serving = None
        if state.phase == "ScalingDown":
            service = self.cluster.get("Service", resource.namespace, active_service_name(resource.name))
            serving = ((service or {}).get("spec") or {}).get("selector", {}).get(COLOR_LABEL)
        decision = decide(
            Observed(
                settings,
                state,
                deployments,
                reads.jobs,
                self.now,
                _gate(spec, resource, state),
                requests_from(resource, spec),
                schema_job_elsewhere=elsewhere,
                serving_color=serving if serving in COLORS else None,
            )
        )
        new_state = decision.state
        seen_jobs = sorted(seen | reads.job_names) if new_state.revision == state.revision else []
        extra = {
            "createdJobs": seen_jobs,
            "handledRequests": handled_ids(resource) or None,
            # Cleared when spec.rollback goes: setting the same request again asks again.
            "handledRollback": rollback_request(spec),
            "handledRollbackGeneration": None,
        }
        status = rollout_status(
            resource.name,
            resource.generation,
            resource.status,
            decision,
            deployments,
            settings,
            extra,
            problem,
            self.now,
        )
        self.write_status(status)  # raises Conflict: nothing below happens on a stale read

        for event in decision.events:
            self.emit(event)
        if problem is not None and resource.status.get("failureMessage") != problem.message:
            self.emit(Event("Warning", problem.reason, problem.message))
        owner = Owner(resource.name, resource.namespace, resource.uid)
        monitoring = frozenset(
            kind
            for kind in (SERVICE_MONITOR, PROMETHEUS_RULE)
            if self.cluster.kind_available(kind[1], resource.namespace)
        )
        existing = frozenset(color for color, found in deployments.items() if found.exists)
        plan = children(owner, spec, decision.intent, monitoring, existing)
        if memory.secret_problem is not None:  # a Job started now could not read its Secret: it waits for it
            missing = memory.secret_problem.secret
            plan = Plan(
                [
                    m
                    for m in plan.apply
                    if m["kind"] != "Job" or m["metadata"]["name"] in reads.job_names or not _reads_secret(m, missing)
                ],
                plan.delete,
            )
        digest = _digest(plan)
        settled = True
        if self.full or digest != memory.applied_plan:
            memory.applied_plan = None  # until every write below landed
            settled = self.write_children(plan)
            memory.applied_plan = digest if settled else None
        if new_state.revision != state.revision:
            _clean_old_jobs(self.cluster, resource, new_state.revision, self.emit)
        asked = [key for key in REQUEST_ANNOTATIONS if key in resource.annotations]
        if asked:  # their ids are in the status already: a lost removal is harmless
            self.cluster.annotate(resource.namespace, resource.name, dict.fromkeys(asked))

        wake = next_wakeup(new_state, settings, self.now, elsewhere)
        if not settled:  # a replaced Job is created again once the old one is gone
            wake = min(wake, REPLACE_POLL) if wake is not None else REPLACE_POLL
        if problem is not None:
            wake = min(wake, SECRET_POLL) if wake is not None else SECRET_POLL
        degraded = problem is not None or (new_state.phase == "Aborted" and new_state.failure is not None)
        return PassResult("degraded" if degraded else "ok", wake)

    def write_children(self, plan: Plan) -> bool:
        """Apply the plan; False while a replaced Job still has to be created again."""
        namespace = self.resource.namespace
        settled = True
        refused: list[str] = []
        for manifest in plan.apply:
            try:
                outcome = self.cluster.apply(manifest)
            except NotOurs as exc:
                refused.append(str(exc))
                continue
            if outcome != "unchanged":
                kind, name = manifest["kind"], manifest["metadata"]["name"]
                self.emit(Event("Normal", outcome.capitalize(), f"{outcome} {kind} {name}"))
            settled = settled and outcome != "replaced"
        gone = self.memory.gone
        gone -= {(m["kind"], m["metadata"]["name"]) for m in plan.apply}
        for ref in plan.delete:
            if (ref.kind, ref.name) in gone and not self.full:
                continue
            if self.cluster.delete(ref.kind, namespace, ref.name):
                self.emit(Event("Normal", "Deleted", f"deleted {ref.kind} {ref.name}"))
            gone.add((ref.kind, ref.name))
        return self._report_refusals(refused) and settled

    def _report_refusals(self, refused: list[str]) -> bool:
        """Remember what could not be written (the next pass reports it as Degraded); True when
        nothing was refused and nothing was refused before either, so the status is already right."""
        before = self.memory.ownership_problem
        if refused:
            message = "; ".join(refused) + ": the operator does not overwrite it; delete or rename it"
            self.memory.ownership_problem = Condition("Degraded", "True", "ChildNotOwned", message)
            if before is None or before.message != message:
                self.emit(Event("Warning", "ChildNotOwned", message))
        else:
            self.memory.ownership_problem = None
        return not refused and before is None


def reconcile(cluster: Cluster, namespace: str, name: str, memory: Memory, full: bool, sink: EventSink) -> PassResult:
    """Read the resource afresh and move it one step; a stale read (409) is read again."""
    for _ in range(CONFLICT_RETRIES):
        body = cluster.get_resource(namespace, name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return PassResult("gone")
        try:
            return _Pass(cluster, body, memory, full, sink).run()
        except Conflict:
            continue
    raise Conflict(f"{namespace}/{name} kept changing during {CONFLICT_RETRIES} passes")
