"""Keys resolve to principals by constant-time comparison; the principal's name is not the key."""

from __future__ import annotations

from ragcorp_service.security.api_keys import KeyRing, presented_key
from ragcorp_service.settings import KeyGrant


def test_keys_resolve_to_their_scopes_and_names_hide_the_key() -> None:
    ring = KeyRing({"s3cret": KeyGrant(frozenset({"ask"})), "other": KeyGrant(frozenset({"ingest"}))})
    principal = ring.resolve("s3cret")
    assert principal is not None and principal.scopes == {"ask"}
    assert "s3cret" not in principal.name and principal.name.startswith("key:")
    assert ring.resolve("s3cre") is None and ring.resolve("") is None
    assert not ring.open and KeyRing({}).open


def test_presented_key_reads_either_header() -> None:
    assert presented_key("k1", None) == "k1"
    assert presented_key(None, "Bearer k2") == "k2"
    assert presented_key(None, "bearer   k3 ") == "k3"
    assert presented_key(None, "Basic dXNlcg==") is None
    assert presented_key(None, "Bearer ") is None
