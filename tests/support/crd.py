"""The RagCorpDeployment CRD's schema as jsonschema checks it (what the API server validates):
the operator's own `lint` reads it the same way, from the copy shipped in its package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ragcorp_operator.lint import crd_validator

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "ragcorpdeployments.ragcorp.dev.yaml").read_text())

__all__ = ["CRD", "crd_schema", "crd_validator"]


def crd_schema() -> dict[str, Any]:
    schema: dict[str, Any] = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema
