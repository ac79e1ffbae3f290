"""An upstream model provider that did not answer, after the SDK's own retries.

Raised by the Gemini embedder and generator for server errors, rate limits and transport
failures (not for a refused key or a bad request, which are configuration bugs). The API
answers 503 with Retry-After for the request that needed it; probes never depend on it, so
Pods stay in rotation for what they can still serve.
"""

from __future__ import annotations


class ProviderUnavailable(RuntimeError):
    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what} is unavailable ({type(cause).__name__}); try again shortly")
        self.what = what
