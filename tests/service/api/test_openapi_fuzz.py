"""A bounded schemathesis run over the app's own OpenAPI schema: no input may cause a 5xx.

The service runs in real uvicorn on 127.0.0.1 with a real database; every
operation gets generated requests (valid and invalid) with a key holding all
scopes, and the only check is the one that matters here: no server errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from ragcorp_service.app.main import create_app
from tests.support.postgres import PostgresForTests
from tests.support.servers import serving
from tests.support.service_app import make_settings

KEY = "fuzz-key"


@pytest.fixture(scope="module")
def service_url(postgres: PostgresForTests, template_database: str) -> Iterator[str]:
    name = postgres.create_database(template=template_database)
    app = create_app(
        make_settings(
            postgres.url(name),
            api_keys=f"{KEY}:ingest,ask,metrics",
            rate_limit_rps=10_000,
            max_request_bytes=65_536,
        )
    )
    with serving(app) as url:
        yield url
    postgres.drop_database(name)


@pytest.fixture(scope="module")
def api_schema(service_url: str) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{service_url}/openapi.json")


def test_no_input_causes_a_server_error(api_schema: schemathesis.schemas.BaseSchema, service_url: str) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=service_url, headers={"X-API-Key": KEY}, checks=[not_a_server_error], timeout=60
            )

        no_server_error()


#: Values Python's JSON parser accepts that the service cannot store or search (see api/json_values.py),
#: and bytes that are not UTF-8 at all.
HOSTILE = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b'"\\ud800"',
    b'"tail \\udfff"',
    b'"a\\u0000b"',
    b'"caf\xe9 (not UTF-8)"',
    b"9" * 5000,
    b'{"a": ' * 40 + b"1" + b"}" * 40,
    b"[" * 40 + b"]" * 40,
]
MARK = "__hostile__"
tried = {"inputs": 0, "server_errors": 0}


def leaves(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every place in a JSON body a value can stand (leaves, and the containers themselves)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += leaves(item, (*path, index))
    return found


def test_hostile_values_in_valid_bodies_never_cause_a_server_error(
    api_schema: schemathesis.schemas.BaseSchema, service_url: str
) -> None:
    """Schema-valid bodies with one value swapped for NaN, 1e400, a lone surrogate, NUL, invalid
    UTF-8, a 5,000-digit integer or deep nesting, sent raw: a 4xx with a JSON body, never a 5xx."""
    operations = [
        result.ok()
        for result in api_schema.get_all_operations()
        if result.ok().method.upper() == "POST" and result.ok().path in ("/v1/search", "/v1/ask", "/v1/documents/batch")
    ]
    assert len(operations) == 3
    with httpx.Client(base_url=service_url, headers={"X-API-Key": KEY}, timeout=60) as http:
        for operation in operations:

            @given(case=operation.as_strategy(), data=st.data())
            @settings(
                max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
            )
            def hostile(case: schemathesis.Case, data: st.DataObject) -> None:
                body = case.body
                if not isinstance(body, dict) or not leaves(body):
                    return
                *parents, last = data.draw(st.sampled_from(leaves(body)))
                target: Any = body
                for step in parents:
                    target = target[step]
                target[last] = MARK
                raw = json.dumps(body).encode().replace(json.dumps(MARK).encode(), data.draw(st.sampled_from(HOSTILE)))
                response = http.post(case.formatted_path, content=raw, headers={"content-type": "application/json"})
                tried["inputs"] += 1
                tried["server_errors"] += response.status_code >= 500
                assert response.status_code < 500, (raw[:300], response.text[:300])
                assert "detail" in response.json() or response.status_code < 400

            hostile()
    print(f"\nhostile: {tried['inputs']} inputs, {tried['server_errors']} server errors")
