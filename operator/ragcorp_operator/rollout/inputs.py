"""What one decision reads: the spec's rollout policy, the state from status, and the children as observed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ragcorp_operator.naming import Color
from ragcorp_operator.rollout.metric_checks import Measurement, MetricCheck
from ragcorp_operator.rollout.state import RolloutState

JobPhase = Literal["missing", "running", "succeeded", "failed"]
JobKind = Literal["backup", "migrate", "smoke", "downgrade"]
#: "nodata": no requests in the window; "unmeasured": Prometheus unreachable or erroring, never a pass.
GateResult = Literal["pass", "fail", "nodata", "unmeasured"]
NoDataPolicy = Literal["wait", "pass", "fail"]


@dataclass(frozen=True)
class DeploymentState:
    exists: bool = False
    image: str | None = None
    #: spec.replicas (the HPA's choice for an autoscaled colour)
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    #: status.replicas: every Pod not yet gone, old template included
    total_replicas: int = 0
    generation: int = 0
    observed_generation: int = 0
    #: Its Pods mount a ServiceAccount token (a template from before the operator stopped mounting
    #: one, which it never used): kept until the colour is next rolled out, never restarted for it.
    mounts_token: bool = False

    def ready_at(self, image: str, replicas: int) -> bool:
        """`kubectl rollout status`'s test, at `replicas`: the controller has seen the latest spec,
        that many replicas are updated, ready and available, and no old Pod is left. Traffic never
        moves to a colour that fails it (terminating, unready or too few Pods)."""
        return (
            self.exists
            and self.image == image
            and self.observed_generation >= self.generation
            and self.replicas >= replicas
            and min(self.updated_replicas, self.ready_replicas, self.available_replicas) >= replicas
            and self.total_replicas <= self.updated_replicas
        )


@dataclass(frozen=True)
class JobState:
    phase: JobPhase = "missing"
    schema_revision: str | None = None
    message: str = ""


@dataclass(frozen=True)
class RolloutPolicy:
    """The spec's rollout knobs (`spec.strategy`, replicas, migrations), as the machine sees them."""

    image: str
    replicas: int
    migrations_enabled: bool
    auto_promote: bool
    ready_timeout: timedelta
    scale_down_delay: timedelta
    keep_previous: bool
    backup_enabled: bool = False
    smoke_test_enabled: bool = True
    gate_enabled: bool = False
    gate_window: timedelta = timedelta(minutes=5)
    gate_deadline: timedelta = timedelta(minutes=15)
    on_no_data: NoDataPolicy = "wait"
    downgrade_on_abort: bool = False
    history_limit: int = 10
    #: With autoscaling: its maximum (the new colour takes the old one's current count, up to this).
    max_replicas: int | None = None
    #: Replicas of the new colour while it is verified; scaled to the full count before the switch.
    preview_replicas: int | None = None
    #: Without autoPromote: promote anyway this long after verification passed.
    auto_promotion_after: timedelta | None = None
    #: How long an aborted colour keeps running (for `kubectl logs`, debugging) before it goes.
    abort_scale_down_delay: timedelta = timedelta(seconds=30)
    #: Run the metric gate again on the active Service after the switch, rolling back on failure.
    gate_after_promotion: bool = True
    #: The backup, migration and downgrade Jobs' deadline, and the smoke Job's (activeDeadlineSeconds).
    job_timeout: timedelta = timedelta(minutes=10)
    smoke_timeout: timedelta = timedelta(minutes=5)
    #: The spec's pod config (`pod_config.config_hash`); None leaves configs out of what a revision is.
    config: str | None = None
    #: `spec.paused`: the machine holds where it is (Argo Rollouts' meaning), requests included.
    paused: bool = False
    #: The analysis a team defined (`strategy.blueGreen.analysis.metrics`), beside the built-in gate.
    checks: tuple[MetricCheck, ...] = ()


@dataclass(frozen=True)
class Requests:
    """One-shot requests from annotations or the spec (each handled once, then cleared)."""

    promote: bool = False
    abort: bool = False
    retry: bool = False
    #: 0 means "the revision before the active one"; None means no rollback asked.
    rollback_to: int | None = None


@dataclass(frozen=True)
class Observed:
    policy: RolloutPolicy
    state: RolloutState
    deployments: dict[Color, DeploymentState]
    #: The Jobs of `state.revision`, by kind; a Job of another revision never counts.
    jobs: dict[JobKind, JobState]
    now: datetime
    gate: GateResult | None = None
    requests: Requests = Requests()
    #: Another migration or downgrade of this resource still runs (a superseded Job's Pod, say).
    schema_job_elsewhere: bool = False
    #: The colour the active Service selects, as read (None when not read).
    serving_color: Color | None = None
    #: The analysis checks measured this pass (those due, while a stage's analysis runs).
    measurements: tuple[Measurement, ...] = ()


def wanted_replicas(observed: Observed) -> int:
    """The replica count the new colour must reach before it takes traffic: the spec's, or with
    autoscaling the old colour's current count (the HPA's choice), up to the HPA's maximum, so a
    switch under load never lands on `minReplicas`."""
    policy, state = observed.policy, observed.state
    wanted = policy.replicas
    if policy.max_replicas is not None and state.active_color:
        current = observed.deployments.get(state.active_color, DeploymentState()).replicas
        wanted = max(wanted, min(current, policy.max_replicas))
    return wanted
