"""kopf handlers: one reconciler per resource, woken by events.

`reconciler` (a kopf daemon, one per RagCorpDeployment) is the only code that
reconciles a resource, so two passes over one resource never overlap and never
compute from the same stale status. It sleeps until something concerns it: an
edit of the resource (annotations included: `on_resource_event` sees every
watch event, unlike kopf's diff-based update handlers), a child's progress or
drift (`watching`), the rollout's next deadline (`rollout.next_wakeup`), or the
resync that repairs what nobody reported. Each pass runs in a thread
(`reconciling` uses the synchronous client) and only reads, decides and writes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import kopf
import prometheus_client

from ragcorp_operator import GROUP, PLURAL, VERSION
from ragcorp_operator.cluster import Cluster, Fenced, kube_configuration, load_api_client
from ragcorp_operator.notifier import Notifier
from ragcorp_operator.operator_metrics import OperatorMetrics, PhaseClock
from ragcorp_operator.operator_settings import FINALIZER, OperatorSettings, start_priority
from ragcorp_operator.reconciling import Memory, PassResult, reconcile
from ragcorp_operator.rollout import Event
from ragcorp_operator.wakeups import Wakeup, Wakeups
from ragcorp_operator.watching import ChildWatcher, start_watchers

#: After a pass failed (the API server unreachable, a bug), wait this long before the next.
ERROR_BACKOFF_SECONDS = 5.0


@dataclass
class Runtime:
    """What the handlers share, in kopf's operator memo (each resource's memo is a shallow copy of
    it, so every reconciler sees the same one): no module-level state, and two operators in one
    process (kopf's test runner, an embedded operator) never share a cluster client or counters."""

    settings: OperatorSettings
    cluster: Cluster
    wakeups: Wakeups = field(default_factory=Wakeups)
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    watchers: list[ChildWatcher] = field(default_factory=list)
    notifier: Notifier | None = None


def runtime_of(memo: kopf.Memo) -> Runtime:
    runtime = memo.get("runtime")
    assert isinstance(runtime, Runtime), "set up by the startup handler"
    return runtime


def bearer_token(header: str | None) -> str | None:
    """The token of an Authorization value: in-cluster config writes "bearer <token>" (lower case), a
    kubeconfig "Bearer <token>"; the scheme is case-insensitive (RFC 7235), kopf adds its own."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """The same credentials as the operator's own client (kubeconfig or in-cluster)."""
    configuration = kube_configuration()
    # The client keeps "<scheme> <token>" under BearerToken and refreshes expiring (bound) tokens here.
    token = bearer_token(configuration.get_api_key_with_prefix("BearerToken"))
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
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """`ragcorp-operator run` passes its settings in the memo; kopf's test runner leaves the environment's."""
    given = memo.get("settings")
    ours = given if isinstance(given, OperatorSettings) else OperatorSettings.from_env()
    runtime = Runtime(ours, Cluster(load_api_client()))
    runtime.notifier = Notifier(runtime.cluster, runtime.metrics)
    runtime.notifier.start()
    memo.runtime = runtime
    settings.posting.level = 20  # INFO and up become Kubernetes Events
    # The daemons need it: kopf stops a resource's reconciler before the resource goes.
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = 300
    # Client-side timeouts: a half-open connection (a partition, a dead API server behind a load
    # balancer) ends and reconnects instead of leaving a watch or a call hanging for ever.
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.peering.name = ours.peering_name
    # Unless one is configured, the priority comes from the start time: the oldest replica leads and
    # a restarted one never preempts it mid-rollout (kopf hands over to the highest at once).
    jitter = random.SystemRandom().randrange(1024)
    settings.peering.priority = ours.peering_priority or start_priority(time.time(), jitter)
    # A replica that dies without saying goodbye (kill -9, a lost node) blocks the others until
    # its keep-alive expires: this many seconds bounds a takeover.
    settings.peering.lifetime = ours.peering_lifetime
    if ours.metrics_port:
        prometheus_client.start_http_server(ours.metrics_port, registry=runtime.metrics.registry)
    runtime.watchers[:] = start_watchers(runtime.cluster.api_client, list(ours.namespaces), runtime.wakeups)


@kopf.on.cleanup()
def stop_watching(memo: kopf.Memo, **_: Any) -> None:
    runtime = runtime_of(memo)
    for watcher in runtime.watchers:
        watcher.stop()
    runtime.watchers.clear()
    if runtime.notifier is not None:
        runtime.notifier.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
def on_resource_event(uid: str, memo: kopf.Memo, **_: Any) -> None:
    """Any change of the resource (spec, annotations, deletion) wakes its reconciler."""
    runtime_of(memo).wakeups.wake(uid)


def _sink(runtime: Runtime) -> Callable[[dict[str, Any], Event], None]:
    """Every Event is a Kubernetes Event; one that is a trigger is also queued for the webhooks."""

    def sink(body: dict[str, Any], event: Event) -> None:
        kopf.event(kopf.Body(cast(kopf.RawBody, body)), type=event.type, reason=event.reason, message=event.message)
        metadata = body.get("metadata") or {}
        runtime.metrics.count_event(metadata.get("namespace", ""), metadata.get("name", ""), event)
        if runtime.notifier is not None:
            runtime.notifier.notify(body, event)

    return sink


def _pass(
    runtime: Runtime,
    namespace: str,
    name: str,
    memory: Memory,
    full: bool,
    stopped: kopf.DaemonStopped,
    clock: PhaseClock,
) -> PassResult:
    metrics, started = runtime.metrics, time.perf_counter()
    try:
        # Fenced: kopf stops the daemon when this replica loses its peering priority (or the resource
        # goes), but cannot stop the thread a pass runs in; the pass's writes ask `stopped` first.
        cluster = runtime.cluster.fenced(lambda: bool(stopped))
        result = reconcile(cluster, namespace, name, memory, full, _sink(runtime))
    except Fenced:
        raise  # told to stop: not an error, and not a pass that happened
    except Exception:
        metrics.reconciles.labels(namespace, name, "error").inc()
        raise
    finally:
        metrics.reconcile_seconds.observe(time.perf_counter() - started)
    if result.outcome == "gone":
        metrics.forget(namespace, name)
    else:
        metrics.reconciles.labels(namespace, name, result.outcome).inc()
        metrics.see_phase(namespace, name, result.phase, clock)
    return result


@kopf.daemon(GROUP, VERSION, PLURAL, id="reconciler", cancellation_timeout=10)
async def reconciler(
    stopped: kopf.DaemonStopped,
    uid: str,
    namespace: str | None,
    name: str,
    logger: kopf.Logger,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    assert namespace is not None, "RagCorpDeployment is namespaced"
    runtime = runtime_of(memo)
    wakeups = runtime.wakeups
    wakeup = wakeups.register(uid)
    memory, clock = Memory(), PhaseClock()
    resync = runtime.settings.resync_seconds
    last_full = float("-inf")
    try:
        while not stopped:
            full = wakeup.take_full() or time.monotonic() - last_full >= resync
            try:
                result = await asyncio.to_thread(_pass, runtime, namespace, name, memory, full, stopped, clock)
            except Fenced:
                return  # told to stop mid-pass: the replica that acts now reads everything afresh
            except Exception as exc:  # logged, and tried again: the next pass reads everything afresh
                logger.exception(f"reconcile failed: {exc}")
                memory.applied_plan = None
                await _sleep(wakeup, ERROR_BACKOFF_SECONDS, stopped)
                continue
            if result.outcome == "gone":
                return
            if full:
                last_full = time.monotonic()
            until_resync = max(resync - (time.monotonic() - last_full), 0.0)
            await _sleep(wakeup, sleep_seconds(result.wake_after, until_resync), stopped)
    finally:
        wakeups.unregister(uid, wakeup)


def sleep_seconds(wake_after: timedelta | None, until_resync: float) -> float:
    """How long the reconciler sleeps: until the rollout's next deadline or the resync, whichever is first.
    A deadline due now is 0 s, not "none" (a zero timedelta is falsy)."""
    if wake_after is None:
        return until_resync
    return min(wake_after.total_seconds(), until_resync)


async def _sleep(wakeup: Wakeup, seconds: float, stopped: kopf.DaemonStopped) -> None:
    """Until woken, `seconds` pass, or kopf stops the daemon (deletion, pausing, exit)."""
    sleeping = asyncio.ensure_future(wakeup.wait())
    stopping = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({sleeping, stopping}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeping.cancel()
        stopping.cancel()
