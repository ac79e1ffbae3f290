"""`ragcorp-service healthcheck`: the image's HEALTHCHECK, against a real server."""

from __future__ import annotations

import pytest

from ragcorp_service.api.main import create_app
from ragcorp_service.cli import main
from ragcorp_service.settings import Settings
from tests.service.servers import free_port, serving


def test_healthcheck_passes_against_a_serving_instance(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(create_app(settings)) as url:
        monkeypatch.setenv("PORT", url.rsplit(":", 1)[1])
        assert main(["healthcheck"]) == 0


def test_healthcheck_fails_when_nothing_listens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", str(free_port()))
    assert main(["healthcheck", "--timeout", "2"]) == 1
    assert "unhealthy" in capsys.readouterr().err
