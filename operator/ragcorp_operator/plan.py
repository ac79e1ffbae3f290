"""From a spec and the rollout's decision to the full set of children and the status.

Pure: the reconciler feeds it what it read and writes what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from ragcorp_operator.conditions import Condition, merge_conditions
from ragcorp_operator.naming import (
    COLORS,
    Color,
    config_map_name,
    dashboards_name,
    deployment_name,
    legacy_config_map_name,
    selector,
)
from ragcorp_operator.pod_config import PodConfig, spec_hash, with_pod_config
from ragcorp_operator.render.common import Manifest, Owner
from ragcorp_operator.render.config import config_map
from ragcorp_operator.render.monitoring import dashboards_config_map, prometheus_rule, service_monitor
from ragcorp_operator.render.networking import active_service, autoscaler, disruption_budget, preview_service
from ragcorp_operator.render.workloads import backup_job, deployment, downgrade_job, migration_job, smoke_job
from ragcorp_operator.rollout import IN_FLIGHT, Decision, DeploymentState, Intent, JobIntent, RolloutPolicy
from ragcorp_operator.rollout.metric_checks import MetricCheck
from ragcorp_operator.spec import RagSpec, parse_spec

#: (apiVersion, kind) of the monitoring kinds, rendered only where their CRDs exist.
SERVICE_MONITOR = ("monitoring.coreos.com/v1", "ServiceMonitor")
PROMETHEUS_RULE = ("monitoring.coreos.com/v1", "PrometheusRule")


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class Plan:
    apply: list[Manifest]
    delete: list[ObjectRef]


def rollout_policy(spec: RagSpec) -> RolloutPolicy:
    blue_green = spec.strategy.blue_green
    gate = blue_green.metric_gate
    return RolloutPolicy(
        image=spec.image,
        config=spec_hash(spec),
        replicas=spec.autoscaling.min_replicas if spec.autoscaling.enabled else spec.replicas,
        migrations_enabled=spec.migrations.enabled,
        auto_promote=blue_green.auto_promote,
        ready_timeout=timedelta(seconds=blue_green.ready_timeout_seconds),
        scale_down_delay=timedelta(seconds=blue_green.scale_down_delay_seconds),
        keep_previous=blue_green.keep_previous,
        backup_enabled=spec.migrations.backup.enabled,
        smoke_test_enabled=blue_green.smoke_test.enabled,
        gate_enabled=gate.enabled,
        gate_window=timedelta(seconds=gate.window_seconds),
        gate_deadline=timedelta(seconds=gate.deadline_seconds),
        on_no_data=gate.on_no_data,
        downgrade_on_abort=spec.migrations.downgrade_on_abort,
        history_limit=blue_green.history_limit,
        max_replicas=spec.autoscaling.max_replicas if spec.autoscaling.enabled else None,
        preview_replicas=blue_green.preview_replica_count,
        auto_promotion_after=(
            timedelta(seconds=blue_green.auto_promotion_seconds)
            if blue_green.auto_promotion_seconds is not None
            else None
        ),
        abort_scale_down_delay=timedelta(seconds=blue_green.abort_scale_down_delay_seconds),
        gate_after_promotion=gate.after_promotion,
        job_timeout=timedelta(seconds=spec.migrations.timeout_seconds),
        smoke_timeout=timedelta(seconds=blue_green.smoke_test.timeout_seconds),
        paused=spec.paused,
        checks=tuple(
            MetricCheck(
                name=metric.name,
                query=metric.query,
                success_condition=metric.success_condition,
                stages=frozenset(metric.stages),
                interval=timedelta(seconds=metric.interval_seconds),
                initial_delay=timedelta(seconds=metric.initial_delay_seconds),
                count=metric.count,
                failure_limit=metric.failure_limit,
                inconclusive_limit=metric.inconclusive_limit,
                dry_run=metric.dry_run,
            )
            for metric in blue_green.analysis.metrics
        ),
    )


def children(
    owner: Owner,
    spec: RagSpec,
    intent: Intent,
    monitoring_kinds: frozenset[tuple[str, str]],
    existing_colors: frozenset[Color] = frozenset(COLORS),
    pod_configs: Mapping[str, PodConfig] = MappingProxyType({}),
    retired_configs: frozenset[str] = frozenset(),
) -> Plan:
    """Every child of the resource for this intent. The HPA owns the active colour's `replicas`, so
    they are left out of its Deployment, but for one being created (`existing_colors` lacks it):
    the API server would start it at 1 while it takes all the traffic.

    Each colour and Job renders with its own revision's pod config (`pod_configs`, by hash): a
    config change rolls out like an image, and the previous colour keeps the one it ran with."""
    colour_specs = {color: _with_config(spec, intent.configs.get(color), pod_configs) for color in intent.deployments}
    job_specs = [(job, _with_config(spec, job.config, pod_configs)) for job in intent.jobs]
    config_maps = {spec_hash(s): config_map(owner, s) for s in [*colour_specs.values(), *(s for _, s in job_specs)]}
    # ConfigMaps before what reads them; Services before Deployments: traffic moves before any
    # colour it leaves is resized (the machine only points a Service at a colour ready at full size).
    apply: list[Manifest] = list(config_maps.values())
    delete = [
        ObjectRef("v1", "ConfigMap", name)
        for name in sorted(
            {config_map_name(owner.name, h) for h in retired_configs - set(config_maps)}
            | {legacy_config_map_name(owner.name)}
        )
    ]
    serving = intent.active_service_color or "blue"
    apply.append(active_service(owner, spec, serving))
    apply.append(preview_service(owner, spec, intent.preview_service_color or serving, serving))
    for color in COLORS:
        if color in intent.deployments:
            image, replicas = intent.deployments[color]
            hpa_owns_replicas = (
                spec.autoscaling.enabled and color == intent.active_service_color and color in existing_colors
            )
            replicas_set = None if hpa_owns_replicas else replicas
            mounts = color in intent.token_mounted
            apply.append(deployment(owner, colour_specs[color], color, image, replicas_set, mounts_token=mounts))
        else:
            delete.append(ObjectRef("apps/v1", "Deployment", deployment_name(owner.name, color)))
    apply.append(disruption_budget(owner))
    if spec.autoscaling.enabled and intent.active_service_color:
        apply.append(autoscaler(owner, spec, intent.active_service_color))
    else:
        delete.append(ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", owner.name))
    apply.extend(render_job(owner, job_spec, job) for job, job_spec in job_specs)
    for kind, wanted, make in (
        (SERVICE_MONITOR, spec.monitoring.service_monitor, service_monitor),
        (PROMETHEUS_RULE, spec.monitoring.prometheus_rule, prometheus_rule),
    ):
        if kind in monitoring_kinds:
            if wanted:
                apply.append(make(owner, spec))
            else:
                delete.append(ObjectRef(kind[0], kind[1], owner.name))
    if spec.monitoring.dashboards:
        apply.append(dashboards_config_map(owner))
    else:
        delete.append(ObjectRef("v1", "ConfigMap", dashboards_name(owner.name)))
    return Plan(apply=apply, delete=delete)


def _with_config(spec: RagSpec, config: str | None, pod_configs: Mapping[str, PodConfig]) -> RagSpec:
    return with_pod_config(spec, pod_configs.get(config)) if config else spec


def render_job(owner: Owner, spec: RagSpec, job: JobIntent) -> Manifest:
    if job.kind == "backup":
        return backup_job(owner, spec, job.revision)
    if job.kind == "migrate":
        return migration_job(owner, spec, job.image, job.revision)
    if job.kind == "smoke":
        return smoke_job(owner, spec, job.image, job.revision, job.schema_revision)
    assert job.schema_revision is not None, "a downgrade needs the revision to go down to"
    return downgrade_job(owner, spec, job.image, job.revision, job.schema_revision)


def conditions(decision: Decision, active_ready: bool) -> list[Condition]:
    """The four conditions for a decision (spec and Secret problems are reported before deciding)."""
    state = decision.state
    in_flight = state.phase in IN_FLIGHT
    if state.phase == "Aborted" and state.failure:
        degraded = Condition("Degraded", "True", state.failure.reason, state.failure.message)
    else:
        degraded = Condition("Degraded", "False", "AsExpected")
    ready = (
        Condition("Ready", "True", "Serving", f"{state.active_color} serves {state.active_image}")
        if active_ready and state.active_color
        else Condition("Ready", "False", "NotServing" if state.active_color else "NotDeployed", "")
    )
    progressing = (
        Condition(
            "Progressing",
            "True",
            state.phase,
            # After the switch the rollout's image is the active one (the target is cleared then).
            f"rolling out {state.target_image or state.active_image}"
            + (f": waiting for {decision.waiting_for}" if decision.waiting_for else ""),
        )
        if in_flight
        else Condition("Progressing", "False", state.phase)
    )
    if state.paused_at:  # Argo Rollouts' way of saying so: progress is neither made nor failed
        since = state.paused_at.isoformat(timespec="seconds")
        message = f"held during {state.phase} since {since} (spec.paused); kubectl ragcorp resume"
        progressing = Condition("Progressing", "Unknown", "RolloutPaused", message)
    migrated = (
        Condition("MigrationsApplied", "True", "Migrated", f"schema revision {state.schema_revision}")
        if state.schema_revision
        else Condition("MigrationsApplied", "False", "NotMigrated" if state.phase != "Aborted" else "MigrationFailed")
    )
    return [ready, progressing, degraded, migrated]


def render_resource(resource: dict[str, Any], monitoring: bool = True) -> list[Manifest]:
    """Everything the operator would create for a new resource, for `render -f` (offline)."""
    metadata = resource.get("metadata", {})
    owner = Owner(
        name=metadata.get("name", "ragcorp"),
        namespace=metadata.get("namespace", "default"),
        uid=metadata.get("uid", ""),
    )
    spec = parse_spec(resource.get("spec", {}))
    policy = rollout_policy(spec)
    # The steady state after the first rollout: blue active, migrated at revision 1.
    intent = Intent(
        deployments={"blue": (spec.image, policy.replicas)},
        active_service_color="blue",
        preview_service_color="blue",
        jobs=(JobIntent("migrate", 1, spec.image),) if spec.migrations.enabled else (),
    )
    kinds = frozenset({SERVICE_MONITOR, PROMETHEUS_RULE}) if monitoring else frozenset()
    return children(owner, spec, intent, kinds).apply


def rollout_status(
    name: str,
    generation: int,
    previous: dict[str, Any],
    decision: Decision,
    deployments: dict[Color, DeploymentState],
    policy: RolloutPolicy,
    extra: dict[str, Any],
    problem: Condition | None,
    now: datetime,
) -> dict[str, Any]:
    """The whole status after a decision: the machine's state, the serving colour's replica counts
    (the scale subresource reads them) and the four conditions. `problem` (a missing Secret)
    overrides Degraded without stopping the rollout."""
    state = decision.state
    active = deployments.get(state.active_color) if state.active_color else None
    active_ready = bool(active and state.active_image and active.ready_at(state.active_image, policy.replicas))
    current = conditions(decision, active_ready)
    if problem is not None and not (state.phase == "Aborted" and state.failure):
        current = [c for c in current if c.type != "Degraded"] + [problem]
    return {
        **state.to_status(),
        "readyReplicas": active.ready_replicas if active else 0,
        "replicas": active.replicas if active else 0,
        "selector": ",".join(f"{k}={v}" for k, v in sorted(selector(name).items())),
        "observedGeneration": generation,
        "failureMessage": problem.message if problem else None,
        **extra,
        "conditions": merge_conditions(previous.get("conditions") or [], current, now, generation),
    }


def invalid_spec_status(previous: dict[str, Any], message: str, now: datetime) -> dict[str, Any]:
    """An unusable spec changes no child and no `observedGeneration` (the applied spec is still the
    last good one); Ready says the new generation is not applied, Degraded says why."""
    kept = [
        Condition(c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
        for c in previous.get("conditions") or []
        if isinstance(c, dict) and c.get("type") not in ("Ready", "Degraded")
    ]
    serving = previous.get("activeColor")
    ready = Condition(
        "Ready",
        "False",
        "InvalidSpec",
        f"the latest spec is not applied; {serving} still serves {previous.get('activeImage')}"
        if serving
        else "the spec is not applied",
    )
    problem = Condition("Degraded", "True", "InvalidSpec", message)
    return {
        "failureMessage": message,
        "conditions": merge_conditions(
            previous.get("conditions") or [], [ready, *kept, problem], now, previous.get("observedGeneration")
        ),
    }
