"""What one decision produces: the next state, what the children must look like, and what to tell people."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ragcorp_operator.naming import Color
from ragcorp_operator.rollout.inputs import JobKind, Requests
from ragcorp_operator.rollout.state import RolloutState
from ragcorp_operator.spec import TRIGGERS, Trigger

__all__ = ["TRIGGERS", "Decision", "Event", "Intent", "JobIntent", "Trigger"]


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    #: The notification triggers this Event is (most Events are none).
    triggers: tuple[Trigger, ...] = ()


@dataclass(frozen=True)
class JobIntent:
    kind: JobKind
    revision: int
    image: str
    #: For a downgrade: the schema revision to go down to.
    schema_revision: str | None = None
    #: The pod config it runs with (its revision's); None: the spec's.
    config: str | None = None


@dataclass(frozen=True)
class Intent:
    """What the children must look like after this step."""

    #: colour -> (image, replicas); a colour absent here is deleted.
    deployments: dict[Color, tuple[str, int]]
    active_service_color: Color | None
    preview_service_color: Color | None
    jobs: tuple[JobIntent, ...] = ()
    #: colour -> the pod config it runs with; a colour absent here runs the spec's.
    configs: dict[Color, str | None] = field(default_factory=dict)
    #: Colours whose running template mounts a ServiceAccount token: rendered as they run until
    #: their next rollout (an operator upgrade restarts no serving Pod).
    token_mounted: frozenset[Color] = frozenset()


@dataclass(frozen=True)
class Decision:
    state: RolloutState
    intent: Intent
    events: list[Event] = field(default_factory=list)
    #: Requests the machine acted on (or refused); the caller clears them.
    handled: Requests = field(default_factory=Requests)
    #: What the phase is waiting for, in words (the Progressing condition says it).
    waiting_for: str = ""
