"""Watches on the operator's children that wake their owner's reconciler.

One watch per child kind, filtered on the server by the label every child
carries (`app.kubernetes.io/managed-by`), so the operator never streams the
cluster's other Deployments or Jobs; each resumes from the last resourceVersion
it saw. An event wakes the owning resource only when its signature changed
(`observe.child_signature`): a Job finishing, a Deployment's replica counts, or
an edit or deletion of what the operator wrote (which asks for a full, repairing
pass). Each watch runs in its own thread on the official client's streaming
response, reconnecting after errors; the reconcilers read the objects
themselves, so a missed event costs latency, never correctness (the resync
covers it).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

from ragcorp_operator.child_status import child_signature, owner_uid
from ragcorp_operator.naming import MANAGED_BY
from ragcorp_operator.wakeups import Wakeups

log = logging.getLogger(__name__)
#: The kinds whose changes wake an owner; the others are repaired by the periodic resync.
WATCHED_KINDS = ("Deployment", "Job", "Service", "ConfigMap")
RECONNECT_SECONDS = 1.0
#: Watches end server-side after this long and reconnect (the API server's own default is 30-60 min).
WATCH_SECONDS = 300
#: The client gives up on a connection this long after the server should have ended it (a half-open
#: connection after a network partition never ends by itself), and on connecting after CONNECT_SECONDS.
CLIENT_GRACE_SECONDS = 30
CONNECT_SECONDS = 10


def _list_function(api: client.ApiClient, kind: str, namespace: str | None) -> Callable[..., Any]:
    apis: dict[str, tuple[Any, str]] = {
        "Deployment": (client.AppsV1Api(api), "deployment"),
        "Job": (client.BatchV1Api(api), "job"),
        "Service": (client.CoreV1Api(api), "service"),
        "ConfigMap": (client.CoreV1Api(api), "config_map"),
    }
    typed, noun = apis[kind]
    if namespace is None:
        return getattr(typed, f"list_{noun}_for_all_namespaces")  # type: ignore[no-any-return]
    method = getattr(typed, f"list_namespaced_{noun}")
    return lambda **kwargs: method(namespace, **kwargs)


class ChildWatcher:
    """One kind's watch (in one namespace, or all), waking owners through `wakeups`."""

    def __init__(self, api: client.ApiClient, kind: str, namespace: str | None, wakeups: Wakeups) -> None:
        self.kind = kind
        self._list = _list_function(api, kind, namespace)
        self._wakeups = wakeups
        self._seen: dict[str, tuple[str, str]] = {}
        self._stop = threading.Event()
        self._response: Any = None
        self._resource_version: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{kind}-{namespace or 'all'}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ends the stream now: a watch on a quiet kind may wait minutes for its next event, and an
        API server shutting down (or a test's) waits for its open streams."""
        self._stop.set()
        response = self._response
        if response is not None:
            response.shutdown()  # unblocks the read in the watching thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._stream()
            except client.ApiException as exc:
                if exc.status == 410:  # the resourceVersion is too old to resume from: list afresh
                    self._resource_version = None
                elif not self._stop.is_set():
                    log.debug("watch on %s refused (%s); reconnecting", self.kind, exc.status)
                    self._stop.wait(RECONNECT_SECONDS)
            except Exception as exc:  # the API server went away, a network error: watch again
                if not self._stop.is_set():
                    log.debug("watch on %s ended (%s); reconnecting", self.kind, exc)
                    self._stop.wait(RECONNECT_SECONDS)

    def _stream(self) -> None:
        """One watch request, resumed from the last resourceVersion seen (the real API server
        then sends only what changed since; 410 Gone, as a status or an ERROR event, means start
        afresh). Bookmarks keep that resourceVersion current on quiet kinds, so a reconnect after
        a quiet spell resumes instead of meeting a 410."""
        self._response = self._list(
            label_selector=f"app.kubernetes.io/managed-by={MANAGED_BY}",
            watch=True,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=(CONNECT_SECONDS, WATCH_SECONDS + CLIENT_GRACE_SECONDS),
            _preload_content=False,
            **({"resource_version": self._resource_version} if self._resource_version else {}),
        )
        # stop() sets the flag, then shuts down the response it sees: one that arrived while it ran
        # (after the flag) is ended here, or it would stay open until the server's timeout.
        if self._stop.is_set():
            self._response.release_conn()
            self._response = None
            return
        try:
            for line in iter_resp_lines(self._response):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    return
                event = json.loads(line)
                manifest = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if manifest.get("code") == 410:
                        self._resource_version = None
                    return
                self._resource_version = manifest.get("metadata", {}).get("resourceVersion") or self._resource_version
                self.handle(event.get("type", ""), manifest)
        finally:
            self._response.release_conn()
            self._response = None

    def handle(self, kind_of_event: str, manifest: dict[str, Any]) -> None:
        uid = owner_uid(manifest)
        object_uid = manifest.get("metadata", {}).get("uid") or ""
        if uid is None or kind_of_event not in ("ADDED", "MODIFIED", "DELETED"):
            return
        before = self._seen.get(object_uid)
        if kind_of_event == "DELETED":
            self._seen.pop(object_uid, None)
            self._wakeups.wake(uid, full=True)
            return
        after = self._seen[object_uid] = child_signature(self.kind, manifest)
        if before is None:
            return  # first sight (a new object, or the initial listing): its owner made it or will read it
        if after[1] != before[1]:
            self._wakeups.wake(uid, full=True)
        elif after[0] != before[0]:
            self._wakeups.wake(uid)


def start_watchers(api: client.ApiClient, namespaces: list[str], wakeups: Wakeups) -> list[ChildWatcher]:
    scopes: list[str | None] = list(namespaces) or [None]
    watchers = [ChildWatcher(api, kind, scope, wakeups) for kind in WATCHED_KINDS for scope in scopes]
    for watcher in watchers:
        watcher.start()
    return watchers
