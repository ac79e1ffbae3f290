"""The blue/green rollout as a pure state machine: observed state in, next state out.

    Pending/Idle --image changed--> BackingUp (optional) --> Migrating --> Deploying(standby colour)
      --> Verifying(ready, smoke-test Job, optional metric gate) --> Promoting(active Service -> new colour)
      --> ScalingDown(old colour, after scaleDownDelaySeconds) --> Idle
    any failure --> [Downgrading (downgradeOnAbort)] --> Aborted: traffic stays on the old colour.
    rollback --> instant switch while the old colour runs, else
                 [Downgrading] --> Deploying(old image) --> Verifying --> Promoting --> ...

Everything the machine needs is in `Observed` (`inputs`); everything it decides is a
`Decision` (`decision`): the next `RolloutState` (`state`, persisted in the resource's
status, so a restarted operator resumes where it stopped) and an `Intent` (`intent`: what
the children must look like). An aborted rollout stays aborted until the image changes or
a retry is requested; a rolled-back image is not rolled forward again by itself.

One file per concern, as Argo Rollouts keeps them: `decide` (the list of steps),
`transitions` (start, abort, the traffic switch), `jobs` (backup, migration, downgrade),
`bluegreen` (ready, verified, promoted, scaled down), `analysis` (the metric gate's
verdict), `rollback` (rollbacks and reverts), `intent` and `deadlines`.
"""

from ragcorp_operator.rollout.deadlines import GATE_POLL, SCHEMA_JOB_POLL, next_wakeup
from ragcorp_operator.rollout.decide import decide
from ragcorp_operator.rollout.decision import TRIGGERS, Decision, Event, Intent, JobIntent, Trigger
from ragcorp_operator.rollout.inputs import (
    DeploymentState,
    GateResult,
    JobKind,
    JobPhase,
    JobState,
    NoDataPolicy,
    Observed,
    Requests,
    RolloutPolicy,
    wanted_replicas,
)
from ragcorp_operator.rollout.jobs import JOB_START_GRACE, waiting_for
from ragcorp_operator.rollout.state import IN_FLIGHT, Failure, HistoryEntry, Phase, RolloutState

__all__ = [
    "GATE_POLL",
    "IN_FLIGHT",
    "JOB_START_GRACE",
    "SCHEMA_JOB_POLL",
    "TRIGGERS",
    "Decision",
    "DeploymentState",
    "Event",
    "Failure",
    "GateResult",
    "HistoryEntry",
    "Intent",
    "JobIntent",
    "JobKind",
    "JobPhase",
    "JobState",
    "NoDataPolicy",
    "Observed",
    "Phase",
    "Requests",
    "RolloutPolicy",
    "RolloutState",
    "Trigger",
    "decide",
    "next_wakeup",
    "waiting_for",
    "wanted_replicas",
]
