"""The operator's kopf handlers: what they hand kopf from the Kubernetes client's configuration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.config.incluster_config import InClusterConfigLoader

from ragcorp_operator.handlers import bearer_token, sleep_seconds


def test_in_cluster_credentials_reach_kopf_as_the_bare_token(tmp_path: Path) -> None:
    """Inside a Pod the client stores "bearer <token>"; kopf must get the token alone, or every call is a 401."""
    (tmp_path / "token").write_text("eyJhbGciOi.payload.signature\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    configuration = client.Configuration()
    InClusterConfigLoader(
        token_filename=str(tmp_path / "token"),
        cert_filename=str(tmp_path / "ca.crt"),
        environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    ).load_and_set(configuration)
    assert bearer_token(configuration.get_api_key_with_prefix("BearerToken")) == "eyJhbGciOi.payload.signature"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        ("Basic abc", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_bearer_scheme_gives_a_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_the_reconciler_sleeps_until_the_nearest_of_deadline_and_resync() -> None:
    assert sleep_seconds(timedelta(0), 300.0) == 0.0, "a deadline due now is not 'no deadline'"
    assert sleep_seconds(timedelta(seconds=15), 300.0) == 15.0
    assert sleep_seconds(None, 120.0) == 120.0
    assert sleep_seconds(timedelta(minutes=10), 120.0) == 120.0
