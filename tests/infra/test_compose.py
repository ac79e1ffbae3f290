"""The Compose files a developer or a staging host runs, checked without a Docker engine.

They validate against the Compose specification's own JSON schema (the copy
check-jsonschema vendors), every file they mount exists, and `.env.example` names
exactly the settings the service reads.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ragcorp_service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("compose.yaml", "compose.prod.yaml")


def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_files_follow_the_compose_specification(name: str) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in compose_validator().iter_errors(load(name))
    ]
    assert errors == []


def test_the_schema_rejects_a_misspelt_key() -> None:
    broken = load("compose.yaml")
    broken["services"]["backend"]["enviroment"] = {"X": "1"}
    assert list(compose_validator().iter_errors(broken))


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_mounted_file_exists(name: str) -> None:
    for service in load(name)["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_development_stack_has_the_database_backend_and_observability() -> None:
    services = load("compose.yaml")["services"]
    assert services["db"]["image"] == "pgvector/pgvector:pg16"
    assert services["backend"]["build"]["target"] == "dev"
    assert "--reload" in services["backend"]["command"]
    assert services["backend"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert "3001:3000" in services["grafana"]["ports"]
    assert {"prometheus", "grafana", "jaeger", "postgres-exporter"} <= services.keys()


def test_staging_stack_runs_the_built_image_with_limits_and_restarts() -> None:
    backend = load("compose.prod.yaml")["services"]["backend"]
    assert backend["build"]["target"] == "runtime"
    assert backend["env_file"] == [{"path": ".env.prod", "required": True}]
    assert backend["restart"] == "unless-stopped"
    assert backend["deploy"]["resources"]["limits"]["memory"]
    assert backend["read_only"] is True and "/tmp" in backend["tmpfs"]
    assert "db" not in load("compose.prod.yaml")["services"]  # the database is external


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_env_example_is_a_valid_configuration() -> None:
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    settings = Settings(**{k.lower(): v for k, v in values.items()})
    assert settings.host == "0.0.0.0" and settings.api_key_scopes
