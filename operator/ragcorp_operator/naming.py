"""Names and labels of the children: the contract platform teams script against."""

from __future__ import annotations

import re
from typing import Literal

Color = Literal["blue", "green"]
COLORS: tuple[Color, Color] = ("blue", "green")
MANAGED_BY = "ragcorp-operator"
COLOR_LABEL = "ragcorp.dev/color"
INSTANCE_LABEL = "app.kubernetes.io/instance"
REVISION_LABEL = "ragcorp.dev/revision"
JOB_KIND_LABEL = "ragcorp.dev/job"
#: On Services: "true" on those the ServiceMonitor scrapes, so that each API Pod is scraped once.
SCRAPE_LABEL = "ragcorp.dev/scrape"
#: On a Job: a digest of the spec the operator asked for. The API server canonicalises what it
#: stores (quantities: `1024Mi` -> `1Gi`; defaults filled in), so a Job is compared by what was
#: asked, never by what the server made of it.
TEMPLATE_HASH_ANNOTATION = "ragcorp.dev/template-hash"
#: On every child written by server-side apply: a digest of the configuration last applied, so a
#: pass that would apply the same again (nothing asked differs) writes nothing.
APPLIED_ANNOTATION = "ragcorp.dev/applied"
#: Leaves room for `<name>-downgrade-<revision>` within a label value's 63 characters (revisions to 999999).
MAX_NAME_LENGTH = 63 - len("-downgrade-") - 6
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def name_problem(name: str) -> str | None:
    """Why children cannot be derived from this resource name, or None (the CRD's CEL rule, again)."""
    if len(name) > MAX_NAME_LENGTH or not _DNS_LABEL.match(name):
        return (
            f"metadata.name must be at most {MAX_NAME_LENGTH} characters, lowercase letters, digits and '-', "
            "starting with a letter: the operator names children <name>-downgrade-<revision> "
            "(63 characters at most) and <name>-preview (a DNS label)"
        )
    return None


def other(color: Color) -> Color:
    return "green" if color == "blue" else "blue"


def deployment_name(name: str, color: Color) -> str:
    return f"{name}-{color}"


def active_service_name(name: str) -> str:
    """The Service clients use is named like the resource."""
    return name


def preview_service_name(name: str) -> str:
    return f"{name}-preview"


def config_map_name(name: str, config: str) -> str:
    """One ConfigMap per pod config (`pod_config`): each colour reads its own, never rewritten."""
    return f"{name}-config-{config}"


def legacy_config_map_name(name: str) -> str:
    """The one ConfigMap both colours shared before configs were revisions; deleted once unused."""
    return f"{name}-config"


def dashboards_name(name: str) -> str:
    return f"{name}-dashboards"


def job_name(name: str, kind: str, revision: int) -> str:
    """`<name>-migrate-<rev>`, `<name>-backup-<rev>`, `<name>-smoke-<rev>`, `<name>-downgrade-<rev>`."""
    return f"{name}-{kind}-{revision}"


def labels(name: str, component: str = "api") -> dict[str, str]:
    """Labels on every child; selectors use a subset (instance, component, colour)."""
    return {
        "app.kubernetes.io/name": "ragcorp",
        INSTANCE_LABEL: name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector(name: str, color: Color | None = None) -> dict[str, str]:
    chosen = {INSTANCE_LABEL: name, "app.kubernetes.io/component": "api"}
    if color is not None:
        chosen[COLOR_LABEL] = color
    return chosen


def image_tag(image: str) -> str:
    """The tag (or digest) of an image reference, as a label-safe version string: at most 63
    characters, ending alphanumeric as label values must (a tag cut at `1.2-` would be refused)."""
    reference = image.rsplit("/", 1)[-1]
    if "@" in reference:
        tag = reference.split("@", 1)[1].replace(":", "-")
    else:
        tag = reference.split(":", 1)[1] if ":" in reference else "latest"
    return tag[:63].rstrip("-_.") or "latest"
