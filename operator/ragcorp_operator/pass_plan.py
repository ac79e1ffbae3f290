"""One reconcile pass's thinking: a snapshot of the resource and its children in; the status,
Events, children and next wake-up out.

Pure: `reading` builds the `Snapshot`, `reconciling` writes the `PassPlan` in order (status first,
then Events, children, old Jobs, request annotations). Nothing here can fail on the cluster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ragcorp_operator.conditions import Condition, condition_of
from ragcorp_operator.naming import Color, active_service_name, preview_service_name
from ragcorp_operator.plan import Plan, children, invalid_spec_status, rollout_policy, rollout_status
from ragcorp_operator.pod_config import PodConfig, pod_config
from ragcorp_operator.render.common import Manifest, Owner
from ragcorp_operator.rollout import (
    DeploymentState,
    GateResult,
    JobKind,
    JobState,
    Observed,
    RolloutState,
    decide,
    next_wakeup,
    wanted_replicas,
)
from ragcorp_operator.rollout.decision import Event
from ragcorp_operator.rollout.intent import intent
from ragcorp_operator.rollout.metric_checks import Measurement
from ragcorp_operator.spec import RagSpec
from ragcorp_operator.user_requests import REQUEST_ANNOTATIONS, Resource, handled_ids, requests_from, rollback_request

#: A missing Secret has no event to wake us when it appears: look again this often.
SECRET_POLL = timedelta(seconds=10)
PassOutcome = Literal["ok", "degraded", "gone"]


@dataclass(frozen=True)
class Snapshot:
    """Everything one pass read, taken before anything is written."""

    resource: Resource
    now: datetime
    #: The parsed spec, or why it cannot be used.
    spec: RagSpec | None
    spec_error: str | None = None
    #: The rollout's state as the status records it.
    state: RolloutState = field(default_factory=RolloutState)
    #: What keeps the resource Degraded without stopping the rollout (a missing Secret, a child we do not own).
    problem: Condition | None = None
    #: A Secret that does not exist yet: a Job reading it is not created until it does.
    missing_secret: str | None = None
    deployments: dict[Color, DeploymentState] = field(default_factory=dict)
    #: This revision's Jobs, by kind, and the names of all of them that exist.
    jobs: dict[JobKind, JobState] = field(default_factory=dict)
    job_names: frozenset[str] = frozenset()
    schema_job_elsewhere: bool = False
    #: The colour the active Service selects (read only while scaling down).
    serving_color: Color | None = None
    gate: GateResult | None = None
    #: The monitoring kinds whose CRDs exist.
    monitoring: frozenset[tuple[str, str]] = frozenset()
    #: The team's analysis checks measured this pass.
    measurements: tuple[Measurement, ...] = ()


@dataclass(frozen=True)
class PassPlan:
    """What the pass writes, in the order `reconciling` writes it."""

    status: dict[str, Any]
    events: list[Event]
    #: None for an unusable spec: no child changes.
    children: Plan | None = None
    #: The revision after this pass, when it changed (older Jobs are cleaned up then).
    new_revision: int | None = None
    #: Request annotations acted on, removed after the status recorded their ids.
    clear_annotations: tuple[str, ...] = ()
    wake_after: timedelta | None = None
    outcome: PassOutcome = "ok"

    @property
    def digest(self) -> str:
        """Of the children: an unchanged plan is not written again until a resync."""
        plan = self.children or Plan([], [])
        text = json.dumps([plan.apply, [vars(ref) for ref in plan.delete]], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def gate_service(spec: RagSpec, name: str, state: RolloutState) -> str | None:
    """The Service the metric gate judges: the preview while verifying, the active one after the
    switch (the post-promotion gate); None when no gate is asked."""
    gate = spec.strategy.blue_green.metric_gate
    if not gate.enabled:
        return None
    if state.phase == "Verifying":
        return preview_service_name(name)
    # The team's post-promotion checks hold the previous colour too; the gate asks only if it runs then.
    if state.phase == "ScalingDown" and not state.verified_after_promotion and gate.after_promotion:
        return active_service_name(name)
    return None


def plan_pass(snapshot: Snapshot) -> PassPlan:
    resource = snapshot.resource
    if snapshot.spec is None:
        message = snapshot.spec_error or "invalid spec"
        distinct = resource.status.get("failureMessage") != message  # one Event per distinct problem
        status = invalid_spec_status(resource.status, message, snapshot.now)
        events = [Event("Warning", "InvalidSpec", message)] if distinct else []
        return PassPlan(status, events + degradation_events(resource.status, status), outcome="degraded")
    spec, problem, now = snapshot.spec, snapshot.problem, snapshot.now
    policy, state = rollout_policy(spec), snapshot.state
    decision = decide(
        Observed(
            policy,
            state,
            snapshot.deployments,
            snapshot.jobs,
            now,
            snapshot.gate,
            requests_from(resource, spec),
            schema_job_elsewhere=snapshot.schema_job_elsewhere,
            serving_color=snapshot.serving_color,
            measurements=snapshot.measurements,
        )
    )
    new_state = decision.state
    pod_configs, retired = _pod_configs(resource.status, spec, policy.config, new_state)
    seen = set(resource.status.get("createdJobs") or [])
    extra = {
        "createdJobs": sorted(seen | snapshot.job_names) if new_state.revision == state.revision else [],
        "handledRequests": handled_ids(resource) or None,
        # Cleared when spec.rollback goes: setting the same request again asks again.
        "handledRollback": rollback_request(spec),
        "handledRollbackGeneration": None,
        # A merge patch: a config no revision needs any more is removed by its null.
        "podConfigs": {**dict.fromkeys(retired), **pod_configs},
    }
    status = rollout_status(
        resource.name, resource.generation, resource.status, decision, snapshot.deployments, policy, extra, problem, now
    )
    events = list(decision.events)
    if problem is not None and resource.status.get("failureMessage") != problem.message:
        events.append(Event("Warning", problem.reason, problem.message))
    events += degradation_events(resource.status, status)
    owner = Owner(resource.name, resource.namespace, resource.uid)
    existing = frozenset(color for color, found in snapshot.deployments.items() if found.exists)
    plan = children(owner, spec, decision.intent, snapshot.monitoring, existing, pod_configs, retired)
    if snapshot.missing_secret is not None:  # a Job started now could not read its Secret: it waits for it
        plan = Plan([m for m in plan.apply if not _waits_for_secret(m, snapshot)], plan.delete)
    wake = next_wakeup(new_state, policy, now, snapshot.schema_job_elsewhere)
    if problem is not None:
        wake = min(wake, SECRET_POLL) if wake is not None else SECRET_POLL
    degraded = problem is not None or (new_state.phase == "Aborted" and new_state.failure is not None)
    return PassPlan(
        status,
        events,
        plan,
        new_revision=new_state.revision if new_state.revision != state.revision else None,
        # Their ids are in the status already: a lost removal is harmless.
        clear_annotations=tuple(key for key in REQUEST_ANNOTATIONS if key in resource.annotations),
        wake_after=wake,
        outcome="degraded" if degraded else "ok",
    )


def render_recorded(
    resource: Resource, spec: RagSpec, monitoring: frozenset[tuple[str, str]], now: datetime
) -> list[Manifest]:
    """The children for the state the resource's status records, without moving it on: what the
    operator applies right now (`ragcorp-operator render -f` of `kubectl get rcd NAME -o yaml`)."""
    policy, state = rollout_policy(spec), RolloutState.from_status(resource.status)
    observed = Observed(policy, state, {}, {}, now)
    wanted = intent(state, wanted_replicas(observed), observed)
    pod_configs, retired = _pod_configs(resource.status, spec, policy.config, state)
    owner = Owner(resource.name, resource.namespace, resource.uid)
    return children(owner, spec, wanted, monitoring, frozenset(wanted.deployments), pod_configs, retired).apply


def degradation_events(before: dict[str, Any], after: dict[str, Any]) -> list[Event]:
    """The Degraded condition turning True (`degraded`) or back (`recovered`): what a team is told
    besides the step that caused it."""
    was, now = condition_of(before, "Degraded"), condition_of(after, "Degraded")
    if now.get("status") == "True" and was.get("status") != "True":
        message = f"{now.get('reason')}: {now.get('message') or ''}".rstrip(": ")
        return [Event("Warning", "Degraded", message, ("degraded",))]
    if was.get("status") == "True" and now.get("status") != "True":
        return [Event("Normal", "Recovered", f"no longer degraded ({was.get('reason')})", ("recovered",))]
    return []


def _pod_configs(
    status: dict[str, Any], spec: RagSpec, spec_config: str | None, state: RolloutState
) -> tuple[dict[str, PodConfig], frozenset[str]]:
    """The pod configs a colour, a held revision or the history still needs (the spec's own,
    `spec_config` by its hash, among them once it is rolled out), and the stored ones no longer needed."""
    stored = status.get("podConfigs") or {}
    available = {**stored, **({spec_config: pod_config(spec)} if spec_config else {})}
    in_use = {state.active_config, state.target_config, state.previous_config, state.held_config}
    in_use |= {entry.config for entry in state.history}
    kept = {config: available[config] for config in sorted(c for c in in_use if c) if config in available}
    return kept, frozenset(set(stored) - set(kept))


def _waits_for_secret(manifest: Manifest, snapshot: Snapshot) -> bool:
    """A Job not yet created whose Pods need the missing Secret to start (env, envFrom, volumes)."""
    secret = snapshot.missing_secret
    if manifest["kind"] != "Job" or manifest["metadata"]["name"] in snapshot.job_names:
        return False
    pod = manifest["spec"]["template"]["spec"]
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        for env in container.get("env") or []:
            if ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == secret:
                return True
        if any((source.get("secretRef") or {}).get("name") == secret for source in container.get("envFrom") or []):
            return True
    return any((volume.get("secret") or {}).get("secretName") == secret for volume in pod.get("volumes") or [])
