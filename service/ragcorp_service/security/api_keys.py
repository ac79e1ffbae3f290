"""Resolving a request's credentials to a principal with scopes.

Every configured key is compared in constant time, and all of them are always
compared, so response timing says nothing about which key nearly matched. Keys
never appear in logs or error messages: a principal is named by a short hash.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ragcorp_service.settings import SCOPES, KeyGrant


@dataclass(frozen=True)
class Principal:
    #: "key:<8 hex of sha256>" for a key, "anonymous" otherwise; safe to log and to label metrics.
    name: str
    scopes: frozenset[str]
    anonymous: bool = False
    #: The collections it may read and write; None: every one (`services.documents` enforces it).
    collections: frozenset[str] | None = None


ANONYMOUS = Principal("anonymous", frozenset(SCOPES), anonymous=True)


class KeyRing:
    def __init__(self, keys: dict[str, KeyGrant]) -> None:
        self._keys = [(key.encode(), grant) for key, grant in keys.items()]

    @property
    def open(self) -> bool:
        """No keys configured: every caller is anonymous with every scope."""
        return not self._keys

    def resolve(self, presented: str) -> Principal | None:
        candidate = presented.encode()
        found: Principal | None = None
        for key, grant in self._keys:
            if hmac.compare_digest(candidate, key):
                name = f"key:{hashlib.sha256(key).hexdigest()[:8]}"
                found = Principal(name, grant.scopes, collections=grant.collections)
        return found


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key from `X-API-Key`, or from `Authorization: Bearer <key>`."""
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None
