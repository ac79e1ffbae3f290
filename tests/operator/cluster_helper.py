"""A test helper that plays the cluster: kubectl for the test, controllers for the children.

It writes through the emulator's HTTP API with the real Kubernetes client, as
kubectl and the built-in controllers would: it marks Deployments ready, finishes
Jobs (with the Pod and termination message a real migration Job leaves), and
deletes or edits children by hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragcorp_operator.cluster import Cluster
from ragcorp_operator.naming import JOB_KIND_LABEL

NAMESPACE = "default"
#: Captured from the real commands by the local cluster (tests/e2e/local checks they still match).
TERMINATION_MESSAGES: dict[str, str] = json.loads((Path(__file__).with_name("termination_messages.json")).read_text())


def termination_message(kind: str, succeeded: bool, schema_revision: str) -> str:
    """What `kind`'s real command leaves in its termination log when it succeeds or fails."""
    if kind in ("migrate", "downgrade"):
        if not succeeded:
            return ""  # the command fails before it can report a revision
        return TERMINATION_MESSAGES[kind].replace('"0004"', json.dumps(schema_revision))
    if kind == "smoke":
        return TERMINATION_MESSAGES["smoke-passed" if succeeded else "smoke-failed"]
    return TERMINATION_MESSAGES[kind]


class ClusterHelper:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    # --- kubectl ---------------------------------------------------------------------------
    def apply_resource(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": "ragcorp.dev/v1alpha1",
            "kind": "RagCorpDeployment",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
        path = f"/apis/ragcorp.dev/v1alpha1/namespaces/{NAMESPACE}/ragcorpdeployments"
        if self.resource(name) is None:
            self.cluster._call("POST", path, body=body)
        else:
            self.cluster._call(
                "PATCH", f"{path}/{name}", body={"spec": spec}, content_type="application/merge-patch+json"
            )

    def annotate(self, name: str, annotations: dict[str, str | None]) -> None:
        path = f"/apis/ragcorp.dev/v1alpha1/namespaces/{NAMESPACE}/ragcorpdeployments/{name}"
        self.cluster._call(
            "PATCH", path, body={"metadata": {"annotations": annotations}}, content_type="application/merge-patch+json"
        )

    def annotations(self, name: str) -> dict[str, str]:
        return dict(((self.resource(name) or {}).get("metadata") or {}).get("annotations") or {})

    def selector_color(self, service: str) -> str | None:
        found = self.get("Service", service)
        return found["spec"]["selector"].get("ragcorp.dev/color") if found else None

    def delete_resource(self, name: str) -> None:
        self.cluster._call("DELETE", f"/apis/ragcorp.dev/v1alpha1/namespaces/{NAMESPACE}/ragcorpdeployments/{name}")

    def resource(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.cluster._call(
                "GET", f"/apis/ragcorp.dev/v1alpha1/namespaces/{NAMESPACE}/ragcorpdeployments/{name}"
            )
            return found
        except Exception:
            return None

    def status(self, name: str) -> dict[str, Any]:
        return dict((self.resource(name) or {}).get("status") or {})

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        for condition in self.status(name).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return {}

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        self.cluster.apply(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE}, "data": data}
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.cluster.get(kind, NAMESPACE, name)

    # --- controllers -----------------------------------------------------------------------
    def mark_deployment_ready(self, name: str) -> None:
        deployment = self.get("Deployment", name)
        assert deployment is not None, f"no Deployment {name}"
        replicas = int(deployment["spec"].get("replicas", 1))
        self._patch_status(
            "Deployment",
            name,
            {
                "replicas": replicas,
                "readyReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
            },
        )

    def finish_job(self, name: str, succeeded: bool, schema_revision: str = "0002") -> None:
        """End a Job as the Job controller would, its Pod holding what the Job's real command writes."""
        job = self.get("Job", name)
        assert job is not None, f"no Job {name}"
        message = termination_message(job["metadata"]["labels"][JOB_KIND_LABEL], succeeded, schema_revision)
        terminated: dict[str, Any] = {
            "exitCode": 0 if succeeded else 1,
            "reason": "Completed" if succeeded else "Error",
        }
        if message:
            terminated["message"] = message
        self.cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{name}-pod", "namespace": NAMESPACE, "labels": {"job-name": name}},
                "spec": {
                    "containers": [{"name": "api", "image": job["spec"]["template"]["spec"]["containers"][0]["image"]}]
                },
                "status": {
                    "containerStatuses": [
                        {
                            "name": "api",
                            "state": {"terminated": terminated},
                        }
                    ]
                },
            }
        )
        # The Job controller's conditions (Kubernetes 1.31+), as tests/e2e/local's controller writes them.
        if succeeded:
            reason, message = "CompletionsReached", "Reached expected number of succeeded pods"
            kinds = ("SuccessCriteriaMet", "Complete")
        else:
            reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            kinds = ("FailureTarget", "Failed")
        conditions = [{"type": kind, "status": "True", "reason": reason, "message": message} for kind in kinds]
        counts = {"succeeded": 1} if succeeded else {"failed": 1}
        self._patch_status("Job", name, {**counts, "conditions": conditions})

    def _patch_status(self, kind: str, name: str, status: dict[str, Any]) -> None:
        self.cluster._call(
            "PATCH",
            self.cluster._path(kind, NAMESPACE, name) + "/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll until `check` returns something truthy; return it. The bound is generous on purpose:
    it only decides how long a failing test takes, and a loaded CI machine must not fail a good one."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
