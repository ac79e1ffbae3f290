"""Deployments (one per colour) and the migration Job, in the resource's image."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ragcorp_operator.naming import (
    COLOR_LABEL,
    JOB_KIND_LABEL,
    REVISION_LABEL,
    TEMPLATE_HASH_ANNOTATION,
    Color,
    config_map_name,
    deployment_name,
    image_tag,
    job_name,
    preview_service_name,
    selector,
)
from ragcorp_operator.pod_config import spec_hash
from ragcorp_operator.render.common import Manifest, Owner, metadata
from ragcorp_operator.render.config import SERVICE_PORT, api_keys_env, database_env, serving_env
from ragcorp_operator.spec import EnvVar, Probe, RagSpec

#: Finished Jobs stay a day for `kubectl logs`, then Kubernetes deletes them.
JOB_TTL_SECONDS = 86_400


def _probe(path: str, probe: Probe) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
    }


def _container(
    spec: RagSpec, image: str, command: list[str], env: list[dict[str, Any]], name: str = "api"
) -> dict[str, Any]:
    """`env` holds the secrets this container needs, and no others. A Job's container is named
    after its Job's kind (`kubectl logs job/... -c migrate`)."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": command,
        "env": env,
        "resources": {"requests": dict(spec.resources.requests), "limits": dict(spec.resources.limits)},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _pod_spec(
    owner: Owner, spec: RagSpec, container: dict[str, Any], restart_policy: str, mounts_token: bool = False
) -> dict[str, Any]:
    """Nothing the operator runs talks to the Kubernetes API: no ServiceAccount token is mounted
    (`mounts_token` renders a colour that still runs with one as it runs, until its next rollout)."""
    container["envFrom"] = [{"configMapRef": {"name": config_map_name(owner.name, spec_hash(spec))}}]
    pod: dict[str, Any] = {
        **({} if mounts_token else {"automountServiceAccountToken": False}),
        "containers": [container],
        "restartPolicy": restart_policy,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    scheduling = spec.scheduling
    if scheduling.node_selector:
        pod["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        pod["tolerations"] = list(scheduling.tolerations)
    if scheduling.affinity:
        pod["affinity"] = dict(scheduling.affinity)
    if scheduling.service_account_name:
        pod["serviceAccountName"] = scheduling.service_account_name
    if scheduling.topology_spread_constraints:
        pod["topologySpreadConstraints"] = list(scheduling.topology_spread_constraints)
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": secret.name} for secret in spec.image_pull_secrets]
    if spec.env:  # after the operator's own: the names cannot clash (`spec.OPERATOR_ENV`)
        container["env"] = [*container.get("env", []), *(_env(variable) for variable in spec.env)]
    return pod


def _env(variable: EnvVar) -> dict[str, Any]:
    return variable.model_dump(by_alias=True, exclude_none=True)


def deployment(
    owner: Owner, spec: RagSpec, color: Color, image: str, replicas: int | None, mounts_token: bool = False
) -> Manifest:
    """One colour's Deployment. `replicas=None` leaves the count to the HPA."""
    container = _container(spec, image, ["ragcorp-service", "serve"], serving_env(spec))
    container["ports"] = [{"name": "http", "containerPort": SERVICE_PORT, "protocol": "TCP"}]
    # Liveness depends on nothing outside the process; readiness on the database, not on Gemini.
    container["livenessProbe"] = _probe("/livez", spec.probes.liveness)
    container["readinessProbe"] = _probe("/healthz", spec.probes.readiness)
    pod_labels = {**selector(owner.name, color), "app.kubernetes.io/version": image_tag(image)}
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(owner.name, color)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "revisionHistoryLimit": 3,
        "template": {
            "metadata": {
                "labels": {**metadata(owner, "")["labels"], **pod_labels},
                **({"annotations": dict(spec.pod_annotations)} if spec.pod_annotations else {}),
            },
            "spec": _pod_spec(owner, spec, container, "Always", mounts_token),
        },
    }
    if replicas is not None:
        deployment_spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(
            owner,
            deployment_name(owner.name, color),
            extra_labels={COLOR_LABEL: color, "app.kubernetes.io/version": image_tag(image)},
        ),
        "spec": deployment_spec,
    }


def _job(
    owner: Owner,
    spec: RagSpec,
    kind: str,
    revision: int,
    container: dict[str, Any],
    deadline: int,
    backoff_limit: int,
    volumes: list[dict[str, Any]] | None = None,
) -> Manifest:
    container["terminationMessagePolicy"] = "File"
    container["name"] = kind
    pod = _pod_spec(owner, spec, container, "Never")
    pod["volumes"] = [*pod["volumes"], *(volumes or [])]
    extra = {REVISION_LABEL: str(revision), JOB_KIND_LABEL: kind}
    job_spec = {
        "backoffLimit": backoff_limit,
        # A Pod evicted by a node drain or preempted is not a failed migration or smoke test: it
        # does not count against backoffLimit, and the Job starts another.
        "podFailurePolicy": {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
        },
        "activeDeadlineSeconds": deadline,
        "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
        "template": {
            "metadata": {"labels": metadata(owner, "", component=kind, extra_labels=extra)["labels"]},
            "spec": pod,
        },
    }
    meta = metadata(owner, job_name(owner.name, kind, revision), component=kind, extra_labels=extra)
    meta["annotations"] = {TEMPLATE_HASH_ANNOTATION: template_hash(job_spec)}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}


def template_hash(job_spec: Manifest) -> str:
    return hashlib.sha256(json.dumps(job_spec, sort_keys=True).encode()).hexdigest()[:16]


def migration_job(owner: Owner, spec: RagSpec, image: str, revision: int) -> Manifest:
    """`ragcorp-service db upgrade` in the new image; it reports the schema revision it reached."""
    container = _container(spec, image, ["ragcorp-service", "db", "upgrade"], database_env(spec))
    # Not retried after a real failure: a second run would meet the schema the first left, and the
    # user should read the first's error (disruptions are retried, see `podFailurePolicy`).
    return _job(owner, spec, "migrate", revision, container, spec.migrations.timeout_seconds, 0)


def downgrade_job(owner: Owner, spec: RagSpec, image: str, revision: int, schema_revision: str) -> Manifest:
    """`ragcorp-service db downgrade REV`, always in the newer image: only it knows the way down."""
    container = _container(spec, image, ["ragcorp-service", "db", "downgrade", schema_revision], database_env(spec))
    return _job(owner, spec, "downgrade", revision, container, spec.migrations.timeout_seconds, 0)


def smoke_job(owner: Owner, spec: RagSpec, image: str, revision: int, schema_revision: str | None) -> Manifest:
    """`ragcorp-service smoke` against the preview Service: health, version, a search and an ask."""
    url = f"http://{preview_service_name(owner.name)}.{owner.namespace}.svc:{spec.service.port}"
    command = ["ragcorp-service", "smoke", "--url", url]
    if schema_revision:
        command += ["--expect-schema", schema_revision]
    container = _container(spec, image, command, api_keys_env(spec))
    timeout = spec.strategy.blue_green.smoke_test.timeout_seconds
    return _job(owner, spec, "smoke", revision, container, timeout, 0)


def backup_job(owner: Owner, spec: RagSpec, revision: int) -> Manifest:
    """`pg_dump` of DATABASE_URL to the backup PVC before anything changes; keeps the newest N."""
    backup = spec.migrations.backup
    prefix = f"/backups/{owner.name}-rev"
    script = (
        "set -eu; "
        f'pg_dump --format=custom --file="{prefix}{revision}-$(date +%Y%m%dT%H%M%S).dump" "$DATABASE_URL"; '
        f"ls -1t {prefix}*.dump | tail -n +{backup.retention + 1} | xargs -r rm --"
    )
    container = {
        **_container(spec, backup.image, ["sh", "-c", script], database_env(spec)),
        # The postgres images run as root by default; 70 is their `postgres` user.
        "securityContext": {**_container(spec, backup.image, [], [])["securityContext"], "runAsUser": 70},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "backups", "mountPath": "/backups"}],
    }
    volumes = [{"name": "backups", "persistentVolumeClaim": {"claimName": backup.pvc_name}}]
    return _job(owner, spec, "backup", revision, container, spec.migrations.timeout_seconds, 1, volumes)
