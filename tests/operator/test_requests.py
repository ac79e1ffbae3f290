"""One-shot requests (annotations and `spec.rollback`) fire once per request, not once per spec edit."""

from __future__ import annotations

from typing import Any

from ragcorp_operator.spec import parse_spec
from ragcorp_operator.user_requests import Resource, requests_from

SPEC: dict[str, Any] = {"image": "app:3", "secrets": {"databaseUrl": {"name": "db", "key": "url"}}}


def rollback_asked(status: dict[str, Any], generation: int, rollback: dict[str, Any] | None) -> int | None:
    spec = {**SPEC, **({"rollback": rollback} if rollback is not None else {})}
    resource = Resource("rag", "default", "uid", generation, spec, status)
    return requests_from(resource, parse_spec(spec)).rollback_to


def test_a_new_spec_rollback_is_a_request() -> None:
    assert rollback_asked({}, 4, {"toRevision": 1}) == 1


def test_a_handled_spec_rollback_does_not_fire_again_on_a_later_spec_edit() -> None:
    handled = {"handledRollback": {"toRevision": 1}}
    assert rollback_asked(handled, 4, {"toRevision": 1}) is None
    assert rollback_asked(handled, 9, {"toRevision": 1}) is None, "an edit of another field bumped the generation"
    assert rollback_asked(handled, 9, {"toRevision": 2}) == 2, "a different request is a new one"


def test_removing_spec_rollback_and_setting_it_again_asks_again() -> None:
    assert rollback_asked({"handledRollback": None}, 12, {"toRevision": 1}) == 1


def test_status_from_an_older_operator_counts_as_handled() -> None:
    assert rollback_asked({"handledRollbackGeneration": 3}, 7, {"toRevision": 1}) is None


def test_an_annotation_asks_regardless_of_status() -> None:
    spec = parse_spec(SPEC)
    resource = Resource("rag", "default", "uid", 2, SPEC, {}, {"ragcorp.dev/rollback": "previous"})
    assert requests_from(resource, spec).rollback_to == 0
