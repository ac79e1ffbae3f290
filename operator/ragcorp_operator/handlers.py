"""kopf handlers: thin adapters from kopf's callbacks to `reconciling.reconcile`.

Create, update and resume react at once; the timer is the level-triggered
heartbeat that advances rollouts (Job finished, replicas ready) and restores
children someone deleted or edited by hand.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import kopf
import prometheus_client

from ragcorp_operator import GROUP, PLURAL, VERSION, metrics
from ragcorp_operator.cluster import Cluster, kube_configuration, load_api_client
from ragcorp_operator.reconciling import Resource, reconcile
from ragcorp_operator.rollout import Event

RECONCILE_INTERVAL = float(os.environ.get("RAGCORP_RECONCILE_INTERVAL", "10"))
#: The operator's own /metrics (0 disables it).
METRICS_PORT = int(os.environ.get("RAGCORP_OPERATOR_METRICS_PORT", "9090"))
#: kopf peering: this replica's priority (0 draws one at random) and how long a silent peer counts as alive.
PEERING_PRIORITY = int(os.environ.get("RAGCORP_PEERING_PRIORITY", "0"))
PEERING_LIFETIME = int(os.environ.get("RAGCORP_PEERING_LIFETIME", "15"))
_cluster: Cluster | None = None


def cluster() -> Cluster:
    global _cluster
    if _cluster is None:
        _cluster = Cluster(load_api_client())
    return _cluster


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """The same credentials as the operator's own client (kubeconfig or in-cluster)."""
    configuration = kube_configuration()
    # The client keeps "Bearer <token>" under BearerToken and refreshes expiring (bound) tokens here.
    raw = configuration.get_api_key_with_prefix("BearerToken") or ""
    token = raw.removeprefix("Bearer ").strip() or None
    return kopf.ConnectionInfo(
        server=configuration.host,
        token=token,
        scheme="Bearer" if token else None,
        ca_path=configuration.ssl_ca_cert,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        insecure=not configuration.verify_ssl,
    )


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = 20  # INFO and up become Kubernetes Events
    settings.persistence.finalizer = "ragcorp.dev/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="ragcorp.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="ragcorp.dev")
    settings.watching.server_timeout = 300
    settings.peering.name = os.environ.get("RAGCORP_PEERING_NAME", "ragcorp-operator")
    # kopf pauses every peer that shares the highest priority, so replicas of one Deployment (same
    # args, same env) must not share one: each draws its own unless one is configured.
    settings.peering.priority = PEERING_PRIORITY or random.SystemRandom().randint(1, 2**31 - 1)
    # A replica that dies without saying goodbye (kill -9, a lost node) blocks the others until
    # its keep-alive expires: this many seconds bounds a takeover.
    settings.peering.lifetime = PEERING_LIFETIME
    if METRICS_PORT:
        prometheus_client.start_http_server(METRICS_PORT)


def _run(body: kopf.Body, patch: kopf.Patch) -> None:
    meta = body.get("metadata", {})
    resource = Resource(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid") or "",
        generation=int(meta.get("generation") or 0),
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        annotations=dict(meta.get("annotations") or {}),
    )

    def emit(event: Event) -> None:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)

    started = time.perf_counter()
    try:
        outcome = reconcile(cluster(), resource, emit)
    except Exception:
        metrics.RECONCILES.labels(resource.namespace, resource.name, "error").inc()
        raise
    finally:
        metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
    status = outcome.status
    conditions = status.get("conditions") or []
    degraded = any(c.get("type") == "Degraded" and c.get("status") == "True" for c in conditions)
    metrics.RECONCILES.labels(resource.namespace, resource.name, "degraded" if degraded else "ok").inc()
    for key, value in status.items():
        patch.status[key] = value
    for annotation in outcome.clear_annotations:
        patch.metadata.annotations[annotation] = None


@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile-on-create")
@kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile-on-update")
@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile-on-resume")
def react(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    _run(body, patch)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RECONCILE_INTERVAL, id="reconcile-periodically")
def heartbeat(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    _run(body, patch)
