"""One step of the machine, as a list of named steps: requests first (rollback, revert, a new
image, retry, abort), then each phase's own step in the order phases follow one another, so a
pass can move through several phases when nothing in between needs waiting for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ragcorp_operator.rollout import bluegreen, jobs, rollback
from ragcorp_operator.rollout.decision import Decision, Event
from ragcorp_operator.rollout.inputs import JobKind, JobState, Observed, Requests, wanted_replicas
from ragcorp_operator.rollout.intent import intent
from ragcorp_operator.rollout.state import IN_FLIGHT, RolloutState, same_revision
from ragcorp_operator.rollout.transitions import abort, start


@dataclass
class Progress:
    """One decision under way: the state so far, what people are told, which requests were acted on."""

    observed: Observed
    state: RolloutState
    #: The new colour's full size (see `wanted_replicas`).
    wanted: int
    events: list[Event] = field(default_factory=list)
    handled: Requests = field(default_factory=Requests)
    #: A rollout (or rollback) began in this pass.
    started: bool = False

    @property
    def jobs(self) -> dict[JobKind, JobState]:
        """Jobs observed this pass belong to the revision read from status; after a start they are stale."""
        return {} if self.started else self.observed.jobs


Step = Callable[[Progress], None]


def _rollback_request(p: Progress) -> None:
    to = p.observed.requests.rollback_to
    if to is None:
        return
    p.handled = replace(p.handled, rollback_to=to)
    if p.state.phase not in ("Idle", "ScalingDown", "Aborted"):
        p.events.append(Event("Warning", "RollbackRejected", f"cannot roll back during {p.state.phase}"))
        return
    before = p.state.revision
    p.state = rollback.rollback(p.observed, p.state, to, p.events)
    p.started = p.state.revision != before


def _revert(p: Progress) -> None:
    p.state = rollback.drop_reverted_failure(p.observed, p.state, p.events)
    if not p.started:
        p.state = rollback.on_revert(p.observed, p.state, p.events)


def _adopt_unrecorded_config(p: Progress) -> None:
    """Status from before configs were revisions: the colours were rendered from the spec, so the
    one running the spec's image runs the spec's config; recorded now, a later change is seen."""
    policy, state = p.observed.policy, p.state
    if policy.config is None:
        return
    if state.active_config is None and state.active_image == policy.image:
        p.state = state = replace(state, active_config=policy.config)
    if state.target_config is None and state.target_image == policy.image:
        p.state = replace(state, target_config=policy.config)


def _new_revision(p: Progress) -> None:
    """A new image or pod config. A running migration is never superseded mid-flight by another:
    the new rollout starts, and its migration waits until the old one's Pod is gone
    (`schema_job_elsewhere`)."""
    image, config, state = p.observed.policy.image, p.observed.policy.config, p.state
    known = (
        (state.active_image, state.active_config),
        (state.target_image, state.target_config),
        (state.held_image, state.held_config),
    )
    wants_new = not any(same_revision(image, config, *revision) for revision in known)
    if wants_new and not p.started and state.phase != "Downgrading" and not state.abort_requested:
        p.state = start(p.observed, state, image, config, p.events)
        p.started = True


def _retry(p: Progress) -> None:
    if not p.observed.requests.retry:
        return
    p.handled = replace(p.handled, retry=True)
    if p.state.phase == "Aborted" and not p.started:
        policy = p.observed.policy
        p.state = start(p.observed, p.state, policy.image, policy.config, p.events)
        p.started = True


def _abort_request(p: Progress) -> None:
    if not p.observed.requests.abort:
        return
    p.handled = replace(p.handled, abort=True)
    state = p.state
    migrating = state.phase == "Migrating" and rollback.migration_unrecorded(p.jobs)
    if migrating and not state.abort_requested:
        # Stopping a migration halfway leaves the schema wherever it got: let it finish, then undo it.
        p.events.append(Event("Normal", "AbortPending", "aborting once the running migration finishes"))
        p.state = replace(state, abort_requested=True)
    elif state.phase in IN_FLIGHT and state.phase not in ("ScalingDown", "Downgrading") and not migrating:
        p.state = abort(p.observed, state, state.phase, "ManualAbort", "aborted by request", p.events)


def _hold(p: Progress) -> None:
    """`spec.paused`: the phase, its timers and the colours stay as they are; a request is declined
    (and cleared) rather than kept to surprise someone at resume."""
    if p.state.paused_at is None:
        p.state = replace(p.state, paused_at=p.observed.now)
        p.events.append(Event("Normal", "Paused", f"rollout held during {p.state.phase} (spec.paused)"))
    requests = p.observed.requests
    declined = [name for name in ("promote", "abort", "retry") if getattr(requests, name)]
    declined += ["rollback"] if requests.rollback_to is not None else []
    if declined:
        p.handled = requests
        message = f"{', '.join(declined)} declined while paused; resume first (kubectl ragcorp resume)"
        p.events.append(Event("Warning", "RequestDeclined", message))


def _resume(p: Progress) -> None:
    """Timers move on by the time paused: a rollout paused for an hour while Deploying does not
    time out the moment it resumes."""
    paused_at, state = p.state.paused_at, p.state
    if paused_at is None:
        return
    held = p.observed.now - paused_at
    p.state = replace(
        state,
        paused_at=None,
        step_started_at=state.step_started_at + held if state.step_started_at else None,
        promoted_at=state.promoted_at + held if state.promoted_at else None,
    )
    p.events.append(
        Event("Normal", "Resumed", f"rollout resumed during {state.phase} after {int(held.total_seconds())} s")
    )


def _back_up(p: Progress) -> None:
    if p.state.phase == "BackingUp":
        p.state = jobs.back_up(p.observed, p.state, p.jobs, p.events)


def _migrate(p: Progress) -> None:
    if p.state.phase == "Migrating":
        p.state = jobs.migrate(p.observed, p.state, p.jobs, p.events)


def _downgrade(p: Progress) -> None:
    if p.state.phase == "Downgrading":
        p.state = jobs.downgrade(p.observed, p.state, p.jobs, p.events)


def _deploy(p: Progress) -> None:
    if p.state.phase == "Deploying":
        p.state = bluegreen.deploy(p.observed, p.state, p.wanted, p.events)


def _verify(p: Progress) -> None:
    if p.state.phase == "Verifying":
        p.state = bluegreen.verify(p.observed, p.state, p.jobs, p.events)


def _promote(p: Progress) -> None:
    requested = p.observed.requests.promote
    if requested:
        p.handled = replace(p.handled, promote=True)
    if p.state.phase != "Promoting":
        if requested:
            p.events.append(Event("Warning", "PromoteIgnored", f"nothing to promote during {p.state.phase}"))
        return
    p.state = bluegreen.promote(p.observed, p.state, requested)
    if p.state.promotion_approved:
        p.state = bluegreen.switch_when_ready(p.observed, p.state, p.wanted, p.events)


def _scale_down(p: Progress) -> None:
    if p.state.phase == "ScalingDown":
        p.state = bluegreen.after_promotion(p.observed, p.state, p.events)


def _give_up_on_unstarted_job(p: Progress) -> None:
    p.state = jobs.job_never_started(p.observed, p.state, p.jobs, p.events)


#: While `spec.paused`: only what records the pause.
PAUSED_STEPS: tuple[Step, ...] = (_hold,)

STEPS: tuple[Step, ...] = (
    _resume,
    _adopt_unrecorded_config,
    _rollback_request,
    _revert,
    _new_revision,
    _retry,
    _abort_request,
    _back_up,
    _migrate,
    _downgrade,
    _deploy,
    _verify,
    _promote,
    _scale_down,
    _give_up_on_unstarted_job,
)


def decide(observed: Observed) -> Decision:
    """One step of the machine. Deciding again on the same observation changes nothing."""
    p = Progress(observed, observed.state, wanted_replicas(observed))
    for step in PAUSED_STEPS if observed.policy.paused else STEPS:
        step(p)
    waiting = jobs.waiting_for(p.state, observed.policy, p.jobs, observed.schema_job_elsewhere, p.wanted)
    return Decision(
        state=p.state,
        intent=intent(p.state, p.wanted, observed),
        events=p.events,
        handled=p.handled,
        waiting_for=waiting,
    )
