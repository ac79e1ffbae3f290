"""One configured google-genai client, shared by the Gemini embedder and generator.

Retries (with exponential backoff on 408, 429 and 5xx) and timeouts are the SDK's
own, configured here once.
"""

from __future__ import annotations

from google import genai
from google.genai import types

from ragcorp_service.settings import Settings

RETRYABLE_STATUS = (408, 429, 500, 502, 503, 504)


def make_gemini_client(settings: Settings) -> genai.Client:
    assert settings.google_api_key is not None
    return genai.Client(
        api_key=settings.google_api_key.get_secret_value(),
        http_options=types.HttpOptions(
            base_url=settings.gemini_base_url,
            timeout=int(settings.gemini_timeout_seconds * 1000),
            retry_options=types.HttpRetryOptions(
                attempts=settings.gemini_max_attempts,
                initial_delay=settings.gemini_retry_initial_delay_seconds,
                max_delay=30.0,
                http_status_codes=list(RETRYABLE_STATUS),
            ),
        ),
    )
