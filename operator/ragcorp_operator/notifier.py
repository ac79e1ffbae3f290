"""Telling `spec.notifications` webhooks about rollouts, off the reconciler's path.

A pass hands each Event that is a trigger (`Event.triggers`) to `Notifier.notify`, which only
queues it: delivery happens on a thread of its own, so a slow or dead webhook never holds a
rollout up. A failed delivery (a connection error, a 5xx, a 429) is tried again after 1, 2, 4
and 8 s; a 4xx other than 429 is the receiver saying no, and a missing Secret or key a setup to
fix: neither is repeated. The URL is read
from its Secret at each attempt (a webhook URL is a credential; rotating it needs no restart).
What happened to each delivery is counted in `ragcorp_operator_notifications_total`.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import urllib3
from pydantic import ValidationError

from ragcorp_operator.cluster import Cluster
from ragcorp_operator.operator_metrics import OperatorMetrics
from ragcorp_operator.rollout import Event
from ragcorp_operator.spec import Notification, Trigger

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
FIRST_RETRY_SECONDS = 1.0
#: Deliveries waiting at most; past it a new one is dropped (and counted), never the reconciler slowed.
QUEUE_LIMIT = 1000
TIMEOUT_SECONDS = 5.0
ICONS = MappingProxyType(
    {"started": "🚀", "promoted": "✅", "aborted": "🛑", "rolledBack": "↩️", "migrationFailed": "🛑"}
)


def payload(target: Notification, namespace: str, name: str, trigger: Trigger, event: Event, at: datetime) -> bytes:
    """Slack's incoming-webhook body, or the event's fields as JSON for any receiver."""
    if target.format == "slack":
        icon = ICONS.get(trigger, "⚠️" if event.type == "Warning" else "ℹ️")
        text = f"{icon} *{namespace}/{name}* {trigger}: {event.message}"
        return json.dumps({"text": text}).encode()
    fields = {
        "trigger": trigger,
        "namespace": namespace,
        "name": name,
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "at": at.isoformat(timespec="seconds"),
    }
    return json.dumps(fields).encode()


@dataclass(order=True)
class _Delivery:
    due: float
    sequence: int
    namespace: str = field(compare=False)
    target: Notification = field(compare=False)
    trigger: Trigger = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(default=1, compare=False)


def targets_of(body: dict[str, Any]) -> list[Notification]:
    """The resource's targets as it was read (a spec the operator refused has none it can use)."""
    found = []
    for raw in (body.get("spec") or {}).get("notifications") or []:
        try:
            found.append(Notification.model_validate(raw))
        except ValidationError:
            continue
    return found


class Notifier:
    def __init__(self, cluster: Cluster, metrics: OperatorMetrics, http: urllib3.PoolManager | None = None) -> None:
        self._cluster, self._metrics = cluster, metrics
        self._http = http or urllib3.PoolManager(retries=False, timeout=TIMEOUT_SECONDS)
        self._queue: list[_Delivery] = []
        self._sequence = itertools.count()
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def notify(self, body: dict[str, Any], event: Event) -> None:
        """Queue a delivery to each target that hears one of the Event's triggers; never blocks."""
        if not event.triggers:
            return
        metadata = body.get("metadata") or {}
        namespace, name, now = metadata.get("namespace", ""), metadata.get("name", ""), datetime.now(UTC)
        for target in targets_of(body):
            trigger = next((t for t in event.triggers if t in target.on), None)
            if trigger is not None:
                self._queue_up(namespace, target, trigger, payload(target, namespace, name, trigger, event, now))

    def _queue_up(self, namespace: str, target: Notification, trigger: Trigger, body: bytes) -> None:
        with self._changed:
            if len(self._queue) >= QUEUE_LIMIT:
                self._metrics.notifications.labels(trigger, "dropped").inc()
                return
            heapq.heappush(
                self._queue, _Delivery(time.monotonic(), next(self._sequence), namespace, target, trigger, body)
            )
            self._changed.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ragcorp-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_SECONDS + 1)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopping and (not self._queue or self._queue[0].due > time.monotonic()):
                    wait = self._queue[0].due - time.monotonic() if self._queue else None
                    self._changed.wait(wait)
                if self._stopping:
                    return
                delivery = heapq.heappop(self._queue)
            self._attempt(delivery)

    def _attempt(self, delivery: _Delivery) -> None:
        target, counter = delivery.target, self._metrics.notifications
        try:
            url = self._url(delivery.namespace, target)
            response = self._http.request("POST", url, body=delivery.body, headers={"Content-Type": "application/json"})
        except (LookupError, ValueError) as exc:  # no such Secret or key, or no URL in it: a setup to fix
            problem, refused = f"{type(exc).__name__}: {exc}", True
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            problem, refused = f"{type(exc).__name__}: {exc}", False
        else:
            if 200 <= response.status < 300:
                counter.labels(delivery.trigger, "delivered").inc()
                return
            problem, refused = f"HTTP {response.status}", 400 <= response.status < 500 and response.status != 429
        final = delivery.attempt >= MAX_ATTEMPTS or refused
        if final:
            counter.labels(delivery.trigger, "failed").inc()
            log.warning(
                "notification %s to %s failed after %d attempts: %s",
                delivery.trigger,
                target.name,
                delivery.attempt,
                problem,
            )
            return
        counter.labels(delivery.trigger, "retried").inc()
        delivery.due = time.monotonic() + FIRST_RETRY_SECONDS * 2 ** (delivery.attempt - 1)
        delivery.attempt += 1
        with self._changed:
            heapq.heappush(self._queue, delivery)
            self._changed.notify()

    def _url(self, namespace: str, target: Notification) -> str:
        secret = self._cluster.get("Secret", namespace, target.url.name)
        if secret is None:
            raise LookupError(f"Secret {namespace}/{target.url.name} not found")
        data = secret.get("data") or {}
        if target.url.key not in data:
            raise LookupError(f"Secret {namespace}/{target.url.name} has no key {target.url.key}")
        return base64.b64decode(data[target.url.key]).decode().strip()
