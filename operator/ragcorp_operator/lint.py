"""`kubectl ragcorp lint -f FILE`: RagCorpDeployments checked offline, first as the API server
would (the CRD's schema, shipped in this package), then as the operator would (its name rules
and `parse_spec`), so a CI job finds a bad manifest before `kubectl apply` does.

The CRD's schema is OpenAPI v3.0, which is JSON Schema draft 4 (boolean `exclusiveMinimum`)
plus Kubernetes keywords (`x-kubernetes-*`) that only widen what passes; dropping them keeps
every rule that refuses. Defaults are the API server's business: the operator's own check
applies the same defaults itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema
import yaml

from ragcorp_operator.naming import name_problem
from ragcorp_operator.spec import SpecError, parse_spec

API_VERSION = "ragcorp.dev/v1alpha1"
KIND = "RagCorpDeployment"


@dataclass(frozen=True)
class Finding:
    """One document's verdict: `problems` empty means it would be accepted and reconciled."""

    document: int
    name: str
    problems: tuple[str, ...] = ()
    #: The kind of a document that is not a RagCorpDeployment, left alone (a Secret beside it, say).
    skipped: str = ""


def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((files("ragcorp_operator") / "assets" / "crd.yaml").read_text())
    return loaded


def _without_kubernetes_keywords(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_kubernetes_keywords(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if isinstance(node, list):
        return [_without_kubernetes_keywords(v) for v in node]
    return node


@cache
def crd_validator() -> jsonschema.Draft4Validator:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft4Validator(_without_kubernetes_keywords(schema))


def schema_problems(resource: dict[str, Any]) -> list[str]:
    """What the API server's validation would refuse, as `field.path: message`, in field order."""
    errors = sorted(crd_validator().iter_errors(resource), key=lambda error: [str(p) for p in error.absolute_path])
    return [f"{'.'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}" for error in errors]


def lint_resource(resource: Any, document: int = 1) -> Finding:
    if not isinstance(resource, dict):
        return Finding(document, "", ("not a Kubernetes object (a YAML mapping)",))
    metadata: dict[str, Any] = resource["metadata"] if isinstance(resource.get("metadata"), dict) else {}
    name = str(metadata.get("name") or "")
    if resource.get("kind") != KIND:
        return Finding(document, name, skipped=str(resource.get("kind") or "no kind"))
    problems: list[str] = []
    if resource.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: {resource.get('apiVersion')!r}, the CRD serves {API_VERSION}")
    if not name:
        problems.append("metadata.name: required")
    elif bad := name_problem(name):
        problems.append(f"metadata.name: {bad}")
    schema = schema_problems({**resource, "apiVersion": API_VERSION})
    problems += schema
    if not schema:  # the operator only ever sees what the API server accepted
        try:
            parse_spec(resource.get("spec") or {})
        except SpecError as exc:
            problems += str(exc).split("; ")
    return Finding(document, name, tuple(problems))


def lint_text(text: str) -> list[Finding]:
    """Every document of a (multi-document) YAML file."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        return [Finding(1, "", (f"not YAML: {exc}".replace("\n", " "),))]
    return [lint_resource(doc, index) for index, doc in enumerate(documents, start=1)]
