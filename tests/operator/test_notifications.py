"""spec.notifications: webhooks hear what they subscribed to, in Slack's shape or as JSON, and a
failing webhook is tried again without holding a rollout up."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from ragcorp_operator.notifier import Notifier, payload
from ragcorp_operator.operator_metrics import OperatorMetrics
from ragcorp_operator.rollout import Event
from ragcorp_operator.spec import Notification
from tests.support.operator_cluster import (
    SPEC,
    V2,
    ClusterHelper,
    deploy,
    migrate_deploy_and_smoke,
    roll_to_v2,
    secrets,
    spec,
)
from tests.support.waiting import eventually
from tests.support.webhook_receiver import Receiver, receiving

ABORTED = Event(
    "Warning", "SmokeTestFailed", "rollout of app:2 aborted at Verifying: /v1/ask answered 500", ("aborted",)
)


def webhook_secret(helper: ClusterHelper, receiver: Receiver, **paths: str) -> None:
    data = {key: base64.b64encode(f"{receiver.url}{path}".encode()).decode() for key, path in paths.items()}
    helper.create_secret("webhooks", data)


def test_slack_and_json_payloads_say_what_happened_where() -> None:
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    slack = Notification(name="team", url={"name": "w", "key": "k"}, format="slack")
    said = json.loads(payload(slack, "prod", "rag", "aborted", ABORTED, at))
    assert said == {"text": "🛑 *prod/rag* aborted: rollout of app:2 aborted at Verifying: /v1/ask answered 500"}
    generic = json.loads(payload(slack.model_copy(update={"format": "json"}), "prod", "rag", "aborted", ABORTED, at))
    assert generic["reason"] == "SmokeTestFailed" and generic["trigger"] == "aborted"
    assert generic["at"] == "2026-12-03T12:00:00+00:00" and generic["name"] == "rag"


def test_a_rollout_is_told_to_each_target_as_it_subscribed(helper: ClusterHelper, operator: object) -> None:
    with receiving() as receiver:
        secrets(helper)
        webhook_secret(helper, receiver, JSON="/all", SLACK="/slack")
        targets = [
            {"name": "audit", "url": {"name": "webhooks", "key": "JSON"}},
            {"name": "team", "url": {"name": "webhooks", "key": "SLACK"}, "format": "slack", "on": ["aborted"]},
        ]
        deploy(helper, spec=spec(notifications=targets))
        roll_to_v2(helper, notifications=targets)
        migrate_deploy_and_smoke(helper, smoke_passes=False)
        eventually(lambda: len(receiver.bodies("/slack")) == 1)
        eventually(lambda: [b["trigger"] for b in receiver.bodies("/all")][-2:] == ["aborted", "degraded"])
    triggers = [body["trigger"] for body in receiver.bodies("/all")]
    assert triggers[:2] == ["started", "promoted"] and triggers[2] == "started", triggers
    aborted = receiver.bodies("/all")[3]
    assert aborted["reason"] == "SmokeTestFailed" and V2 in aborted["message"]
    assert receiver.bodies("/slack")[0]["text"].startswith("🛑 *default/rag* aborted: rollout of")
    assert helper.status("rag")["activeImage"] == SPEC["image"]


def test_a_failing_webhook_is_tried_again_and_a_refusing_one_is_not(helper: ClusterHelper) -> None:
    metrics = OperatorMetrics()
    with receiving() as receiver:
        webhook_secret(helper, receiver, FLAKY="/flaky", GONE="/gone")
        receiver.answers = {"/flaky": [500, 503], "/gone": [404]}
        targets = [
            {"name": "flaky", "url": {"name": "webhooks", "key": "FLAKY"}},
            {"name": "gone", "url": {"name": "webhooks", "key": "GONE"}},
            {"name": "unset", "url": {"name": "missing", "key": "URL"}},
        ]
        body = {"metadata": {"namespace": "default", "name": "rag"}, "spec": {"notifications": targets}}
        notifier = Notifier(helper.cluster, metrics)
        notifier.start()
        try:
            notifier.notify(body, ABORTED)
            notifier.notify(body, Event("Normal", "Created", "created Job rag-smoke-2"))  # no trigger: nothing sent

            def counted(outcome: str) -> float:
                return (
                    metrics.registry.get_sample_value(
                        "ragcorp_operator_notifications_total", {"trigger": "aborted", "outcome": outcome}
                    )
                    or 0.0
                )

            eventually(lambda: counted("delivered") == 1 and counted("failed") == 2, timeout=30)
        finally:
            notifier.stop()
    assert len(receiver.bodies("/flaky")) == 3 and counted("retried") == 2
    assert len(receiver.bodies("/gone")) == 1, "a 404 is the receiver saying no: not repeated"
