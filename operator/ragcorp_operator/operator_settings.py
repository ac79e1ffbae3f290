"""The operator's own settings: one object, filled once at start.

`ragcorp-operator run` fills it from its flags; each flag falls back to an
environment variable (the Helm chart sets those), as kopf's own `envvar=` options
do. kopf's in-process test runner starts the handlers without our CLI, so the
handlers fall back to `from_env()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


#: kopf's finalizer on every RagCorpDeployment (its daemons need one); `release-finalizers` removes it.
FINALIZER = "ragcorp.dev/operator"
#: 2026-01-01T00:00:00Z: start times count from here.
_EPOCH = 1767225600
#: Priorities count down from here (below 2**53, so every JSON reader keeps them exact).
_PRIORITY_CEILING = 2**52


def start_priority(started: float, jitter: int) -> int:
    """kopf's peering priority for a replica started at `started` (epoch seconds): the earlier it
    started, the higher. The longest-running replica leads, and a restarted one (a new Pod, a
    crash) never preempts it mid-rollout. `jitter` (0-1023) parts replicas started in the same
    millisecond: kopf pauses every peer that shares the highest priority."""
    milliseconds = max(round((started - _EPOCH) * 1000), 0)
    return _PRIORITY_CEILING - milliseconds * 1024 - jitter


@dataclass(frozen=True)
class OperatorSettings:
    #: Seconds between full passes over a resource that nothing woke: repairs drift nobody reported.
    resync_seconds: float = 300.0
    #: The operator's own /metrics port (0 disables it).
    metrics_port: int = 9090
    #: kopf peering: its name, this replica's priority (0: from its start time, see
    #: `start_priority`) and how long a silent peer counts as alive (bounds a takeover after a crash).
    peering_name: str = "ragcorp-operator"
    peering_priority: int = 0
    peering_lifetime: int = 15
    #: Namespaces to serve (empty: all).
    namespaces: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, namespaces: tuple[str, ...] = ()) -> OperatorSettings:
        return cls(
            resync_seconds=_env_float("RAGCORP_RESYNC_SECONDS", cls.resync_seconds),
            metrics_port=int(_env_float("RAGCORP_OPERATOR_METRICS_PORT", cls.metrics_port)),
            peering_name=os.environ.get("RAGCORP_PEERING_NAME") or cls.peering_name,
            peering_priority=int(_env_float("RAGCORP_PEERING_PRIORITY", cls.peering_priority)),
            peering_lifetime=int(_env_float("RAGCORP_PEERING_LIFETIME", cls.peering_lifetime)),
            namespaces=namespaces,
        )
