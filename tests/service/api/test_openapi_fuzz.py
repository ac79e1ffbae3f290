"""A bounded schemathesis run over the app's own OpenAPI schema: no input may cause a 5xx.

The service runs in real uvicorn on 127.0.0.1 with a real database; every
operation gets generated requests (valid and invalid) with a key holding all
scopes, and the only check is the one that matters here: no server errors.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from ragcorp_service.api.main import create_app
from tests.service.conftest import make_settings
from tests.service.postgres import PostgresForTests
from tests.service.servers import serving

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
