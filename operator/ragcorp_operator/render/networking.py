"""Services (active and preview), the HPA on the active colour, and the PDB."""

from __future__ import annotations

from ragcorp_operator.naming import (
    SCRAPE_LABEL,
    Color,
    active_service_name,
    deployment_name,
    preview_service_name,
    selector,
)
from ragcorp_operator.render.common import Manifest, Owner, metadata
from ragcorp_operator.spec import RagSpec


def service(owner: Owner, spec: RagSpec, name: str, color: Color, scraped: bool, service_type: str) -> Manifest:
    """`scraped` marks the Service the ServiceMonitor selects (see `SCRAPE_LABEL`)."""
    meta = metadata(owner, name, extra_labels={SCRAPE_LABEL: "true" if scraped else "false"})
    if spec.service.annotations:
        meta["annotations"] = dict(spec.service.annotations)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": service_type,
            "selector": selector(owner.name, color),
            "ports": [{"name": "http", "port": spec.service.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def active_service(owner: Owner, spec: RagSpec, color: Color) -> Manifest:
    return service(owner, spec, active_service_name(owner.name), color, scraped=True, service_type=spec.service.type)


def preview_service(owner: Owner, spec: RagSpec, color: Color, active_color: Color) -> Manifest:
    """Scraped only while it selects the other colour: the same Pods behind both Services would be
    scraped twice and every dashboard would double-count them. While a new colour is verified,
    its series carry the preview Service's name, which is what the metric gate asks Prometheus for.

    Always ClusterIP, whatever `spec.service.type` says: the preview selects the colour not yet
    verified, and a second LoadBalancer or NodePort would put it in front of the outside world."""
    name = preview_service_name(owner.name)
    return service(owner, spec, name, color, scraped=color != active_color, service_type="ClusterIP")


def autoscaler(owner: Owner, spec: RagSpec, color: Color) -> Manifest:
    scaling = spec.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(owner, owner.name),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment_name(owner.name, color),
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization},
                    },
                }
            ],
        },
    }


def disruption_budget(owner: Owner) -> Manifest:
    """At most one API Pod down at a time during node drains, across both colours."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(owner, owner.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(owner.name)}},
    }
