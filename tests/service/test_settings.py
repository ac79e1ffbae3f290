"""Bad configuration fails at start, naming the variable; secrets never appear."""

from __future__ import annotations

import pytest

from ragcorp_service import __version__
from ragcorp_service.cli import main
from ragcorp_service.local_models import DEFAULT
from ragcorp_service.settings import KeyGrant, Settings, SettingsError, load_settings, parse_api_keys


def test_defaults_run_offline_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "GOOGLE_API_KEY", "HOST", "PORT", "EMBEDDING_MODEL", "API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.host, settings.port, settings.provider) == ("127.0.0.1", 8000, "local")
    assert settings.resolved_embedding_dimensions == 384


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DB_POOL_MAX_SIZE", "many"),
        ("PORT", "70000"),
        ("LOG_LEVEL", "LOUD"),
        ("DATABASE_URL", "mysql://db/x"),
        ("DATABASE_READ_URL", "replica:5432"),
        ("RATE_LIMIT_RPS", "-1"),
        ("OTEL_ENABLED", "perhaps"),
        ("EMBEDDER_THREADS", "0"),
        ("EMBEDDER_THREADS", "all"),
        ("KEYWORD_CACHE_MB", "-1"),
    ],
)
def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"invalid setting {variable}"):
        load_settings()


def test_pool_bounds_are_checked_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_MIN_SIZE", "20")
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "5")
    with pytest.raises(SettingsError, match="DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE"):
        load_settings()


def test_a_read_replica_needs_the_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_READ_URL", "postgresql://replica/ragcorp")
    with pytest.raises(SettingsError, match="DATABASE_READ_URL is a replica of DATABASE_URL"):
        load_settings()


def test_seed_production_api_keys_parse() -> None:
    assert parse_api_keys("prod-key-1:ingest,ask;metrics-key:metrics;team-a:ask:handbook,faq") == {
        "prod-key-1": KeyGrant(frozenset({"ingest", "ask"})),
        "metrics-key": KeyGrant(frozenset({"metrics"})),
        "team-a": KeyGrant(frozenset({"ask"}), frozenset({"handbook", "faq"})),
    }


def test_bad_api_keys_are_reported_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "s3cret-value:ingest,admin")
    with pytest.raises(SettingsError, match="unknown scope") as error:
        load_settings()
    assert "s3cret-value" not in str(error.value)


def test_local_provider_cannot_pretend_to_be_another_model() -> None:
    with pytest.raises(ValueError, match="needs GOOGLE_API_KEY") as error:
        Settings(google_api_key=None, embedding_model="text-embedding-004")
    assert DEFAULT.name in str(error.value)  # names the variants that do run offline


def test_the_offline_default_is_int8_onnx() -> None:
    assert Settings(google_api_key=None).resolved_embedding_model == DEFAULT.name
    assert DEFAULT.backend == "onnx" and DEFAULT.precision == "int8"


def test_cli_exits_2_with_the_message(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    assert main(["db", "heads"]) == 2
    assert "invalid setting PORT" in capsys.readouterr().err


def test_a_blank_gemini_key_means_the_offline_provider() -> None:
    # compose.yaml passes GOOGLE_API_KEY: ${GOOGLE_API_KEY:-}, an empty string when unset.
    assert Settings(google_api_key="  ", api_keys=None).provider == "local"


def test_serve_checks_the_address_it_binds_not_only_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --host 0.0.0.0` without API_KEYS must refuse as HOST=0.0.0.0 does (it starts nothing)."""
    from ragcorp_service.cli import main

    monkeypatch.delenv("API_KEYS", raising=False)
    monkeypatch.delenv("ALLOW_ANONYMOUS", raising=False)
    monkeypatch.setenv("HOST", "127.0.0.1")
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "HOST=0.0.0.0 is not loopback" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "reported"), [("", __version__), ("2.4.1", "2.4.1")])
def test_the_images_version_is_read_when_settings_are(
    monkeypatch: pytest.MonkeyPatch, given: str, reported: str
) -> None:
    """An image built with VERSION reports it; one built without (an empty variable) the package's."""
    monkeypatch.setenv("RAGCORP_VERSION", given)
    assert Settings().ragcorp_version == reported
