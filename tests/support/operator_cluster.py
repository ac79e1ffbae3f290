"""What the operator's tests share: the cluster helper, the operator runner, and common steps.

`ClusterHelper` plays the cluster: kubectl for the test, controllers for the children.
It writes through the emulator's HTTP API with the real Kubernetes client, as
kubectl and the built-in controllers would: it marks Deployments ready, finishes
Jobs (with the Pod and termination message a real migration Job leaves), and
deletes or edits children by hand. `running_operator` runs the real kopf runtime
with our handlers; `deploy` and the rollout steps drive a resource the way every
test needs to.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

from kopf.testing import KopfRunner

from ragcorp_operator.cluster import Cluster
from ragcorp_operator.naming import JOB_KIND_LABEL
from tests.support.termination_messages import termination_message
from tests.support.waiting import eventually

NAMESPACE = "default"


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

    def events(self, name: str) -> list[dict[str, Any]]:
        """The Events about resource `name`, oldest first (what `kubectl describe` lists)."""
        listed = self.cluster._call("GET", f"/api/v1/namespaces/{NAMESPACE}/events")
        return [e for e in listed.get("items") or [] if (e.get("involvedObject") or {}).get("name") == name]

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        self.cluster.apply(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE}, "data": data}
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.cluster.get(kind, NAMESPACE, name)

    def config_map_of(self, deployment: str) -> dict[str, Any] | None:
        """The ConfigMap a colour's Pods read (each pod config has its own)."""
        found = self.get("Deployment", deployment)
        if found is None:
            return None
        container = found["spec"]["template"]["spec"]["containers"][0]
        return self.get("ConfigMap", container["envFrom"][0]["configMapRef"]["name"])

    # --- controllers -----------------------------------------------------------------------
    def mark_deployment_ready(self, name: str) -> None:
        deployment = self.get("Deployment", name)
        assert deployment is not None, f"no Deployment {name}"
        replicas = int(deployment["spec"].get("replicas", 1))
        self._patch_status(
            "Deployment",
            name,
            {
                "observedGeneration": deployment["metadata"].get("generation", 1),
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
        container = job["spec"]["template"]["spec"]["containers"][0]
        self.cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{name}-pod", "namespace": NAMESPACE, "labels": {"job-name": name}},
                "spec": {"containers": [{"name": container["name"], "image": container["image"]}]},
                "status": {"containerStatuses": [{"name": container["name"], "state": {"terminated": terminated}}]},
            }
        )
        # The Job controller's conditions (Kubernetes 1.31+), as the real one writes them (tests/e2e/cluster).
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


@contextlib.contextmanager
def running_operator(peering: str | None = None) -> Iterator[KopfRunner]:
    """The real kopf runtime with our handlers, in a background thread (kopf's KopfRunner).

    Standalone unless `peering` names a ClusterKopfPeering, as the Helm chart's replicas run.
    """
    import kopf

    from ragcorp_operator import handlers  # noqa: F401  (registers the handlers)

    mode = ["--peering", peering] if peering else ["--standalone"]
    with KopfRunner(["run", *mode, "--all-namespaces"], registry=kopf.get_default_registry()) as runner:
        yield runner
    assert runner.exception is None, runner.output


# --- common steps ----------------------------------------------------------------------------
SPEC = {
    "image": "registry.example/ragcorp:1.0",
    "replicas": 2,
    "secrets": {"databaseUrl": {"name": "db", "key": "DATABASE_URL"}, "apiKeys": {"name": "keys", "key": "API_KEYS"}},
    "config": {"rateLimitRps": 50, "allowedOrigins": ["https://app.example"]},
}


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secrets(helper: ClusterHelper) -> None:
    encode = _base64
    helper.create_secret("db", {"DATABASE_URL": encode("postgresql://db/rag")})
    helper.create_secret("keys", {"API_KEYS": encode("k:ask")})


def deploy(helper: ClusterHelper, name: str = "rag", spec: dict[str, Any] | None = None) -> None:
    helper.apply_resource(name, spec or SPEC)
    eventually(lambda: helper.get("Job", f"{name}-migrate-1"))
    helper.finish_job(f"{name}-migrate-1", succeeded=True)
    eventually(lambda: helper.get("Deployment", f"{name}-blue"))
    helper.mark_deployment_ready(f"{name}-blue")
    eventually(lambda: helper.get("Job", f"{name}-smoke-1"))
    helper.finish_job(f"{name}-smoke-1", succeeded=True)
    eventually(lambda: helper.condition(name, "Ready").get("status") == "True")


V2 = "registry.example/ragcorp:2.0"
FAST = {"blueGreen": {"scaleDownDelaySeconds": 0}}


def spec(**changes: Any) -> dict[str, Any]:
    return {**SPEC, "strategy": FAST, **changes}


def image_of(helper: ClusterHelper, deployment: str) -> str | None:
    found = helper.get("Deployment", deployment)
    return found["spec"]["template"]["spec"]["containers"][0]["image"] if found else None


def replicas_of(helper: ClusterHelper, deployment: str) -> int | None:
    found = helper.get("Deployment", deployment)
    return found["spec"].get("replicas") if found else None


def roll_to_v2(helper: ClusterHelper, **changes: Any) -> None:
    helper.apply_resource("rag", spec(image=V2, **changes))


def migrate_deploy_and_smoke(
    helper: ClusterHelper, smoke_passes: bool, revision: int = 2, schema: str = "0003"
) -> None:
    """Play the cluster through one rollout to green: migration succeeds, green turns ready, smoke test ends."""
    eventually(lambda: helper.get("Job", f"rag-migrate-{revision}"))
    helper.finish_job(f"rag-migrate-{revision}", succeeded=True, schema_revision=schema)
    eventually(lambda: helper.get("Deployment", "rag-green"))
    helper.mark_deployment_ready("rag-green")
    eventually(lambda: helper.get("Job", f"rag-smoke-{revision}"))
    helper.finish_job(f"rag-smoke-{revision}", succeeded=smoke_passes)


def promote_v2(helper: ClusterHelper) -> None:
    migrate_deploy_and_smoke(helper, smoke_passes=True)
    eventually(lambda: helper.selector_color("rag") == "green")


def promote_v2_while_blue_still_serves(helper: ClusterHelper) -> None:
    """v1 on blue, then v2 promoted to green with blue kept serving (a long scale-down delay)."""
    secrets(helper)
    slow = {"blueGreen": {"scaleDownDelaySeconds": 3600}}
    deploy(helper, spec=spec(strategy=slow))
    roll_to_v2(helper, strategy=slow)
    promote_v2(helper)
    eventually(lambda: helper.status("rag").get("phase") == "ScalingDown")
