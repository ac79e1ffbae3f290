"""What shapes a colour's Pods besides its image: the spec's fields that reach the pod template
or the ConfigMap. A change to them is a new revision, rolled out blue/green like an image, and
each colour keeps the config it was rolled out with (an instant rollback restores it).

A config is identified by a short hash of its JSON; the status keeps each one a colour or the
history still needs (`podConfigs`), so the previous colour renders with its own config after
the spec moved on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ragcorp_operator.spec import RagSpec

#: The spec's fields (by their JSON names) that end up in the serving Pods.
POD_FIELDS = (
    "imagePullPolicy",
    "resources",
    "secrets",
    "config",
    "probes",
    "scheduling",
    "env",
    "imagePullSecrets",
    "podAnnotations",
)
PodConfig = dict[str, Any]


def pod_config(spec: RagSpec) -> PodConfig:
    """Without nulls, as the status keeps it (a merge patch drops them); each field replaces the
    spec's whole, so an absent key is the field's default."""
    dumped = spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    return {field: dumped[field] for field in POD_FIELDS if field in dumped}


def config_hash(config: PodConfig) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]


def spec_hash(spec: RagSpec) -> str:
    return config_hash(pod_config(spec))


def with_pod_config(spec: RagSpec, config: PodConfig | None) -> RagSpec:
    """The spec as it was for a colour rolled out with `config` (the spec itself when unknown)."""
    if config is None:
        return spec
    others = {k: v for k, v in spec.model_dump(by_alias=True, mode="json").items() if k not in POD_FIELDS}
    return RagSpec.model_validate({**others, **config})
