"""The service's environment: a ConfigMap for settings, Secret references for secrets.

Every variable here is one the service's Settings reads (a test holds the two
halves to it). Settings live in a ConfigMap, so changing them does not restart
running Pods; they take effect as Pods start (the next rollout or restart).
"""

from __future__ import annotations

from typing import Any

from ragcorp_operator.naming import config_map_name
from ragcorp_operator.pod_config import spec_hash
from ragcorp_operator.render.common import Manifest, Owner, metadata
from ragcorp_operator.spec import RagSpec, SecretKeyRef

SERVICE_PORT = 8000


def service_settings(spec: RagSpec) -> dict[str, str]:
    config = spec.config
    values = {
        "HOST": "0.0.0.0",
        "PORT": str(SERVICE_PORT),
        "ALLOWED_ORIGINS": ",".join(config.allowed_origins),
        "RATE_LIMIT_RPS": f"{config.rate_limit_rps:g}",
        "DB_POOL_MIN_SIZE": str(config.db_pool.min_size),
        "DB_POOL_MAX_SIZE": str(config.db_pool.max_size),
        "LOG_LEVEL": config.log_level,
        "OTEL_ENABLED": "1" if config.otel.enabled else "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": config.otel.endpoint,
    }
    if config.embedding_model:
        values["EMBEDDING_MODEL"] = config.embedding_model
    if config.generation_model:
        values["GENERATION_MODEL"] = config.generation_model
    # The schema's vector size follows the embedder; Jobs without the Gemini key still know which.
    values["EMBEDDING_PROVIDER"] = "gemini" if spec.secrets.google_api_key is not None else "local"
    if spec.secrets.api_keys is None:
        # No keys configured: the service must be told explicitly to serve anonymously.
        values["ALLOW_ANONYMOUS"] = "1"
    return values


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def serving_env(spec: RagSpec) -> list[dict[str, Any]]:
    """The serving Pods' secrets: the database (and its replica), the Gemini key, the API keys."""
    secrets = spec.secrets
    env = database_env(spec)
    if secrets.database_read_url is not None:
        env.append(_secret_env("DATABASE_READ_URL", secrets.database_read_url))
    if secrets.google_api_key is not None:
        env.append(_secret_env("GOOGLE_API_KEY", secrets.google_api_key))
    env += api_keys_env(spec)
    return env


def database_env(spec: RagSpec) -> list[dict[str, Any]]:
    """What migration, downgrade and backup Jobs get: the primary only (the schema's embedder is
    named by EMBEDDING_PROVIDER in the ConfigMap, so they need no Gemini key)."""
    return [_secret_env("DATABASE_URL", spec.secrets.database_url)]


def api_keys_env(spec: RagSpec) -> list[dict[str, Any]]:
    """What the smoke Job gets: the API keys, to call the preview as a client would."""
    ref = spec.secrets.api_keys
    return [] if ref is None else [_secret_env("API_KEYS", ref)]


def config_map(owner: Owner, spec: RagSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, config_map_name(owner.name, spec_hash(spec)), component="config"),
        "data": service_settings(spec),
    }


def referenced_secrets(spec: RagSpec) -> list[SecretKeyRef]:
    secrets = spec.secrets
    refs = [
        secrets.database_url,
        secrets.database_read_url,
        secrets.google_api_key,
        secrets.api_keys,
        spec.monitoring.metrics_key,
    ]
    return [ref for ref in refs if ref is not None]
