"""The read half of a pass: the resource's children, Jobs, Secrets, the active Service and the
metric gate, gathered into one `Snapshot` before anything is written.

Reads are only as many as the phase needs: Jobs while a phase waits on one, Pods only where a
Job's report matters, the Service while scaling down, Secrets on full passes and spec changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ragcorp_operator.child_status import deployment_state, job_finished, job_state, needs_pods, owner_uid
from ragcorp_operator.cluster import Cluster
from ragcorp_operator.conditions import Condition
from ragcorp_operator.naming import (
    COLOR_LABEL,
    COLORS,
    INSTANCE_LABEL,
    JOB_KIND_LABEL,
    REVISION_LABEL,
    Color,
    active_service_name,
    deployment_name,
    job_name,
    name_problem,
    preview_service_name,
)
from ragcorp_operator.pass_plan import Snapshot, gate_service
from ragcorp_operator.plan import PROMETHEUS_RULE, SERVICE_MONITOR, rollout_policy
from ragcorp_operator.prometheus import check_query, evaluate_gate, measure
from ragcorp_operator.render.config import referenced_secrets
from ragcorp_operator.rollout import DeploymentState, JobKind, JobState, RolloutState
from ragcorp_operator.rollout.analysis import due_checks, stage_window
from ragcorp_operator.rollout.metric_checks import Measurement
from ragcorp_operator.spec import RagSpec, SpecError, parse_spec
from ragcorp_operator.user_requests import Resource

JOB_KINDS: tuple[JobKind, ...] = ("backup", "migrate", "smoke", "downgrade")
#: The phases that wait on a Job of the current revision: only they list Jobs.
WAITS_ON_JOBS = frozenset({"BackingUp", "Migrating", "Verifying", "Downgrading"})
SCHEMA_JOBS = ("migrate", "downgrade")


@dataclass(frozen=True)
class SecretProblem:
    condition: Condition
    secret: str


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


def read_snapshot(cluster: Cluster, resource: Resource, memory: Memory, full: bool, now: datetime) -> Snapshot:
    try:
        bad_name = name_problem(resource.name)
        if bad_name:
            raise SpecError(bad_name)
        spec = parse_spec(resource.spec)
    except SpecError as exc:
        return Snapshot(resource, now, spec=None, spec_error=str(exc))
    if full or memory.secrets_generation != resource.generation or memory.secret_problem is not None:
        memory.secret_problem = _missing_secret(cluster, resource.namespace, spec)
        memory.secrets_generation = resource.generation
    secret = memory.secret_problem
    state = RolloutState.from_status(resource.status)
    jobs, job_names = _jobs(cluster, resource, state) if state.phase in WAITS_ON_JOBS else ({}, frozenset())
    service = gate_service(spec, resource.name, state)
    gate = spec.strategy.blue_green.metric_gate
    return Snapshot(
        resource,
        now,
        spec,
        problem=secret.condition if secret else memory.ownership_problem,
        missing_secret=secret.secret if secret else None,
        state=state,
        deployments={color: _deployment(cluster, resource, color) for color in COLORS},
        jobs=jobs,
        job_names=job_names,
        schema_job_elsewhere=_schema_job_elsewhere(cluster, resource, state, jobs),
        serving_color=_serving_color(cluster, resource, state),
        gate=evaluate_gate(
            gate.prometheus_url,
            resource.namespace,
            service,
            gate.window_seconds,
            gate.max_error_rate,
            gate.max_p95_seconds,
        )
        if service
        else None,
        monitoring=frozenset(
            kind for kind in (SERVICE_MONITOR, PROMETHEUS_RULE) if cluster.kind_available(kind[1], resource.namespace)
        ),
        measurements=_measurements(resource, spec, state, now),
    )


def _measurements(resource: Resource, spec: RagSpec, state: RolloutState, now: datetime) -> tuple[Measurement, ...]:
    """The team's analysis checks due now, measured on the Service the stage judges."""
    due = due_checks(state, rollout_policy(spec), now)
    window = stage_window(state)
    if not due or window is None:
        return ()
    analysis = spec.strategy.blue_green.analysis
    url = analysis.prometheus_url or spec.strategy.blue_green.metric_gate.prometheus_url
    name = resource.name
    service = preview_service_name(name) if window[0] == "prePromotion" else active_service_name(name)
    return measure(url, {c.name: check_query(c, resource.namespace, service, name) for c in due}, window[0])


def _deployment(cluster: Cluster, resource: Resource, color: Color) -> DeploymentState:
    return deployment_state(cluster.get("Deployment", resource.namespace, deployment_name(resource.name, color)))


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


def _jobs(cluster: Cluster, resource: Resource, state: RolloutState) -> tuple[dict[JobKind, JobState], frozenset[str]]:
    """This revision's Jobs, by kind: one list call, and Pods read only where a report matters."""
    revision = state.revision
    listed = cluster.list("Job", resource.namespace, {INSTANCE_LABEL: resource.name, REVISION_LABEL: str(revision)})
    # A Job counts only if this very resource made it: a re-created resource of the same name
    # must not take an old `-migrate-1` as its own.
    by_name = {job["metadata"]["name"]: job for job in listed if owner_uid(job) == resource.uid}
    seen = set(resource.status.get("createdJobs") or [])
    jobs: dict[JobKind, JobState] = {}
    for kind in JOB_KINDS:
        name = job_name(resource.name, kind, revision)
        job = by_name.get(name)
        pods = cluster.list("Pod", resource.namespace, {"job-name": name}) if needs_pods(kind, job) else []
        jobs[kind] = job_state(kind, job, pods, created_before=name in seen)
    return jobs, frozenset(by_name)


def _schema_job_elsewhere(
    cluster: Cluster, resource: Resource, state: RolloutState, jobs: dict[JobKind, JobState]
) -> bool:
    """Whether another migration or downgrade of this resource may still touch the schema: an
    unfinished Job of another revision, or a Pod of one still running (a deleted Job's Pods
    outlive it until they stop). Asked only while our own schema Job is not there yet."""
    if state.phase not in ("Migrating", "Downgrading"):
        return False
    own_kind: JobKind = "migrate" if state.phase == "Migrating" else "downgrade"
    if jobs.get(own_kind, JobState()).phase != "missing":
        return False
    own = job_name(resource.name, own_kind, state.revision)
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


def _serving_color(cluster: Cluster, resource: Resource, state: RolloutState) -> Color | None:
    """The colour the active Service selects, read only while the previous colour waits to go."""
    if state.phase != "ScalingDown":
        return None
    service = cluster.get("Service", resource.namespace, active_service_name(resource.name))
    selected = ((service or {}).get("spec") or {}).get("selector", {}).get(COLOR_LABEL)
    return next((color for color in COLORS if color == selected), None)
