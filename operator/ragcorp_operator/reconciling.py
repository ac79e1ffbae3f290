"""One reconcile pass: read (`reading`), decide (`pass_plan`, pure), write, in that order.

Only the resource's reconciler (one per resource, see `handlers`) calls it, so
no two passes over one resource ever overlap. The order of the writes is the
point: the status goes first, with the `resourceVersion` it was computed from as
a precondition, and children only after it landed. A pass that read stale state
loses the race (409) and starts over from a fresh read; a crash between the two
writes leaves a status the next pass reaches the same decision from, so children
never run ahead of a status that could be lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ragcorp_operator.child_status import job_finished
from ragcorp_operator.cluster import Cluster, Conflict, NotOurs, is_subset
from ragcorp_operator.conditions import Condition
from ragcorp_operator.naming import INSTANCE_LABEL, REVISION_LABEL
from ragcorp_operator.pass_plan import PassOutcome, PassPlan, plan_pass
from ragcorp_operator.plan import Plan
from ragcorp_operator.reading import Memory, read_snapshot
from ragcorp_operator.rollout import Event, Phase
from ragcorp_operator.user_requests import Resource

__all__ = ["Memory", "PassResult", "reconcile"]

EventSink = Callable[[dict[str, Any], Event], None]
#: Jobs of this many recent revisions are kept (beyond their TTL) for `kubectl logs`.
JOB_REVISIONS_KEPT = 3
#: After replacing a Job (delete, then create): look again this soon.
REPLACE_POLL = timedelta(seconds=1)
CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class PassResult:
    outcome: PassOutcome
    #: How long until time alone could change the decision (None: only an event can).
    wake_after: timedelta | None = None
    requests: int = 0
    #: The rollout's phase after the pass (None when the status has none: an unusable spec).
    phase: Phase | None = None


def reconcile(cluster: Cluster, namespace: str, name: str, memory: Memory, full: bool, sink: EventSink) -> PassResult:
    """Read the resource afresh and move it one step; a stale read (409) is read again."""
    for _ in range(CONFLICT_RETRIES):
        body = cluster.get_resource(namespace, name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return PassResult("gone")
        resource = Resource.from_body(body)
        snapshot = read_snapshot(cluster, resource, memory, full, datetime.now(UTC))
        try:
            return _Writer(cluster, body, resource, memory, full, sink).write(plan_pass(snapshot))
        except Conflict:
            continue
    raise Conflict(f"{namespace}/{name} kept changing during {CONFLICT_RETRIES} passes")


class _Writer:
    """The write half of one pass, in its order: status, Events, children, old Jobs, annotations."""

    def __init__(
        self, cluster: Cluster, body: dict[str, Any], resource: Resource, memory: Memory, full: bool, sink: EventSink
    ) -> None:
        self.cluster, self.body, self.resource, self.memory, self.full = cluster, body, resource, memory, full
        self._sink = sink

    def emit(self, event: Event) -> None:
        self._sink(self.body, event)

    def write(self, plan: PassPlan) -> PassResult:
        resource, memory = self.resource, self.memory
        if not _unchanged(plan.status, resource.status):  # raises Conflict: nothing below happens on a stale read
            self.cluster.patch_status(resource.namespace, resource.name, plan.status, resource.resource_version)
        for event in plan.events:
            self.emit(event)
        if plan.children is None:
            return PassResult(plan.outcome, plan.wake_after, phase=plan.status.get("phase"))
        settled = True
        digest = plan.digest
        if self.full or digest != memory.applied_plan:
            memory.applied_plan = None  # until every write below landed
            settled = self.write_children(plan.children)
            memory.applied_plan = digest if settled else None
        if plan.new_revision is not None:
            self.clean_old_jobs(plan.new_revision)
        if plan.clear_annotations:
            self.cluster.annotate(resource.namespace, resource.name, dict.fromkeys(plan.clear_annotations))
        wake = plan.wake_after
        if not settled:  # a replaced Job is created again once the old one is gone
            wake = min(wake, REPLACE_POLL) if wake is not None else REPLACE_POLL
        return PassResult(plan.outcome, wake, phase=plan.status.get("phase"))

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

    def clean_old_jobs(self, revision: int) -> None:
        """Stop the unfinished Jobs of superseded revisions, and delete finished ones older than
        JOB_REVISIONS_KEPT revisions."""
        resource = self.resource
        for job in self.cluster.list("Job", resource.namespace, {INSTANCE_LABEL: resource.name}):
            job_revision = (job.get("metadata", {}).get("labels") or {}).get(REVISION_LABEL, "")
            if not job_revision.isdigit() or int(job_revision) >= revision:
                continue
            stale = int(job_revision) <= revision - JOB_REVISIONS_KEPT
            name = job["metadata"]["name"]
            if (stale or not job_finished(job)) and self.cluster.delete("Job", resource.namespace, name):
                why = "superseded" if not stale else f"older than {JOB_REVISIONS_KEPT} revisions"
                self.emit(Event("Normal", "Deleted", f"deleted Job {name} ({why})"))


def _unchanged(status: dict[str, Any], current: dict[str, Any]) -> bool:
    return all(
        (current.get(key) is None) if value is None else is_subset(value, current.get(key))
        for key, value in status.items()
    )
