"""Kubernetes-style status conditions (Ready, Progressing, Degraded, MigrationsApplied).

`lastTransitionTime` changes only when a condition's status flips, as
`kubectl wait --for=condition=Ready` and dashboards expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]
CONDITION_TYPES = ("Ready", "Progressing", "Degraded", "MigrationsApplied")


@dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def condition_of(status: dict[str, Any], kind: str) -> dict[str, Any]:
    """The condition of this type in a status as stored (`{}` when there is none)."""
    conditions = status.get("conditions") or []
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == kind), {})


def merge_conditions(
    previous: list[dict[str, Any]], current: list[Condition], now: datetime, generation: int | None = None
) -> list[dict[str, Any]]:
    """The new conditions, keeping each one's transition time unless its status changed; each
    says which generation of the spec it describes (`observedGeneration`, as Kubernetes' own do)."""
    before = {c.get("type"): c for c in previous if isinstance(c, dict)}
    merged = []
    for condition in current:
        old = before.get(condition.type)
        changed = old is None or old.get("status") != condition.status
        merged.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": now.isoformat() if changed else old.get("lastTransitionTime"),  # type: ignore[union-attr]
                **({"observedGeneration": generation} if generation is not None else {}),
            }
        )
    return merged
