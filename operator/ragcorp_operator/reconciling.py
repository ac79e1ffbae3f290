"""One reconcile pass: read the resource and its children, decide, write.

Called by every kopf handler (create, update, resume, and the drift timer), so
the operator is level-triggered: whatever happened, the next pass moves the
resource one step towards its spec. The thinking is in `spec`, `rollout` and
`plan`; this module only reads and writes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ragcorp_operator.cluster import Cluster
from ragcorp_operator.conditions import Condition, merge_conditions
from ragcorp_operator.naming import COLORS, deployment_name, migration_job_name, selector
from ragcorp_operator.observe import deployment_state, job_state
from ragcorp_operator.plan import PROMETHEUS_RULE, SERVICE_MONITOR, children, conditions, rollout_settings
from ragcorp_operator.render.common import Owner
from ragcorp_operator.render.config import referenced_secrets
from ragcorp_operator.rollout import Event, Observed, RolloutState, decide
from ragcorp_operator.spec import RagSpec, SpecError, parse_spec

EventSink = Callable[[Event], None]
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@dataclass(frozen=True)
class Resource:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]


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


def reconcile(cluster: Cluster, resource: Resource, emit: EventSink, now: datetime | None = None) -> dict[str, Any]:
    """Move the resource one step; return the status patch."""
    now = now or datetime.now(UTC)
    with _locks[resource.uid]:
        try:
            spec = parse_spec(resource.spec)
        except SpecError as exc:
            problem = Condition("Degraded", "True", "InvalidSpec", str(exc))
            emit(Event("Warning", "InvalidSpec", str(exc)))
            return _problem_status(resource, problem, now)
        missing = _missing_secret(cluster, resource.namespace, spec)
        if missing is not None:
            if (resource.status.get("failureMessage") or "") != missing.message:
                emit(Event("Warning", missing.reason, missing.message))
            return {**_problem_status(resource, missing, now), "failureMessage": missing.message}

        state = RolloutState.from_status(resource.status)
        owner = Owner(resource.name, resource.namespace, resource.uid)
        deployments = {
            color: deployment_state(
                cluster.get("Deployment", resource.namespace, deployment_name(resource.name, color))
            )
            for color in COLORS
        }
        job_name = migration_job_name(resource.name, state.revision) if state.revision else ""
        job = cluster.get("Job", resource.namespace, job_name) if job_name else None
        pods = cluster.list("Pod", resource.namespace, {"job-name": job_name}) if job else []
        migration = job_state(job, pods, created_before=resource.status.get("migrationJob") == job_name)

        decision = decide(Observed(rollout_settings(spec), state, deployments, migration, now, state.revision))
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
        active = deployments[new_state.active_color] if new_state.active_color else None
        active_ready = bool(
            active
            and new_state.active_image
            and active.ready_at(new_state.active_image, rollout_settings(spec).replicas)
        )
        status: dict[str, Any] = {
            **new_state.to_status(),
            "readyReplicas": active.ready_replicas if active else 0,
            "replicas": active.replicas if active else 0,
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector(resource.name).items())),
            "observedGeneration": resource.generation,
            "failureMessage": None,
            "conditions": merge_conditions(
                resource.status.get("conditions") or [], conditions(decision, active_ready), now
            ),
        }
        if decision.intent.migration is not None:
            status["migrationJob"] = migration_job_name(resource.name, decision.intent.migration[0])
        return status
