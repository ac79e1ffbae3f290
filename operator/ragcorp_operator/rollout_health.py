"""A resource's health as a pipeline waits for it: `kubectl ragcorp status --timeout` (Argo
Rollouts' `status` verbs: Healthy, Progressing, Paused, Degraded).

Read from status alone, so that it is what any client sees. A spec the operator has not yet
read is Progressing whatever the status says: `kubectl apply` then `status --timeout` must
not report the previous revision's health.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ragcorp_operator.conditions import condition_of

Verdict = Literal["Healthy", "Progressing", "Paused", "Degraded"]


@dataclass(frozen=True)
class Health:
    verdict: Verdict
    message: str


def health(resource: dict[str, Any]) -> Health:
    status = resource.get("status") or {}
    generation = (resource.get("metadata") or {}).get("generation")
    degraded = condition_of(status, "Degraded")
    says = f"{degraded.get('reason')}: {degraded.get('message') or ''}".rstrip(": ")
    if degraded.get("status") == "True" and degraded.get("reason") == "InvalidSpec":
        return Health("Degraded", says)  # an unusable spec is never observed: do not wait for it
    if generation is not None and status.get("observedGeneration") != generation:
        return Health("Progressing", f"generation {generation} not yet seen by the operator")
    if degraded.get("status") == "True":
        return Health("Degraded", says)
    if status.get("pausedAt"):
        return Health("Paused", f"held during {status.get('phase')} since {status['pausedAt']}")
    ready = condition_of(status, "Ready")
    settled = status.get("phase") == "Idle" or (
        status.get("phase") == "ScalingDown" and status.get("verifiedAfterPromotion")
    )
    if settled and ready.get("status") == "True":
        return Health("Healthy", ready.get("message") or "serving")
    progressing = condition_of(status, "Progressing")
    return Health("Progressing", progressing.get("message") or str(status.get("phase") or "Pending"))
