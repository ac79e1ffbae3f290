"""What every child shares: metadata with labels and an ownerReference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragcorp_operator import GROUP, KIND, VERSION
from ragcorp_operator.naming import labels

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Owner:
    """The RagCorpDeployment that owns the children (uid may be empty offline)."""

    name: str
    namespace: str
    uid: str = ""


def metadata(owner: Owner, name: str, component: str = "api", extra_labels: dict[str, str] | None = None) -> Manifest:
    meta: Manifest = {
        "name": name,
        "namespace": owner.namespace,
        "labels": {**labels(owner.name, component), **(extra_labels or {})},
    }
    if owner.uid:
        meta["ownerReferences"] = [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return meta
