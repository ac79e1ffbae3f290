"""The RagCorpDeployment CRD's schema as jsonschema checks it (what the API server validates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "ragcorpdeployments.ragcorp.dev.yaml").read_text())


def crd_schema() -> dict[str, Any]:
    schema: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def openapi_to_jsonschema(node: Any) -> Any:
    """Drop the Kubernetes-only keywords jsonschema does not know (they only widen)."""
    if isinstance(node, dict):
        return {k: openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if isinstance(node, list):
        return [openapi_to_jsonschema(v) for v in node]
    return node


def crd_validator() -> jsonschema.Draft4Validator:
    """OpenAPI v3.0 schemas are JSON Schema draft 4 (boolean exclusiveMinimum) plus extensions."""
    return jsonschema.Draft4Validator(openapi_to_jsonschema(crd_schema()))
