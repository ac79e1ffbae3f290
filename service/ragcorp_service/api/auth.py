"""The `Allowed` dependency: authenticate, check the route's scope, spend a rate-limit token.

Routes declare what they need in their signature, e.g. `_: Allowed["ask"]`
(see `deps.py`). Health checks take none of it, so probes are never limited.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from ragcorp_service.api.service_metrics import route_of
from ragcorp_service.api.state import AppState
from ragcorp_service.security.api_keys import ANONYMOUS, Principal, presented_key
from ragcorp_service.security.rate_limit import retry_after_header

UNAUTHORIZED_HEADERS = MappingProxyType({"WWW-Authenticate": 'Bearer realm="ragcorp"'})
#: Failed authentications a client address may make at once, then how many a second: a person
#: mistyping a key never notices, a key-guessing loop gets 429s. Only failures are held back: behind
#: an ingress every client shares one address, and one client's stale key must not lock out the rest,
#: so a valid key is limited by its own rate limit alone.
AUTH_FAILURES_BURST = 10
AUTH_FAILURES_PER_SECOND = 1.0


def authenticate(state: AppState, x_api_key: str | None, authorization: str | None) -> Principal:
    if state.keys.open:
        return ANONYMOUS
    if authorization and not x_api_key and not authorization.lower().startswith("bearer "):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unsupported Authorization scheme; use Bearer", headers=UNAUTHORIZED_HEADERS
        )
    key = presented_key(x_api_key, authorization)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send X-API-Key or Authorization: Bearer",
            headers=UNAUTHORIZED_HEADERS,
        )
    principal = state.keys.resolve(key)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", headers=UNAUTHORIZED_HEADERS)
    return principal


def require(scope: str) -> object:
    def dependency(
        request: Request,
        x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Principal:
        state: AppState = request.app.state.ragcorp
        address = request.client.host if request.client else "-"
        try:
            principal = authenticate(state, x_api_key, authorization)
        except HTTPException:
            state.metrics.auth_failures.inc()
            blocked = state.auth_failures.wait(address)
            if blocked > 0:
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    "too many failed authentications from this address; wait before trying again",
                    headers={"Retry-After": retry_after_header(blocked)},
                ) from None
            state.auth_failures.take(address)
            raise
        if scope not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this API key lacks the {scope!r} scope")
        caller = principal.name if not principal.anonymous else f"ip:{address}"
        wait = state.rate_limits.take(caller)
        if wait > 0:
            state.metrics.rate_limited.labels(route_of(request.scope)).inc()
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"rate limit of {state.settings.rate_limit_rps:g} requests/s exceeded (RATE_LIMIT_RPS, per replica)",
                headers={"Retry-After": retry_after_header(wait)},
            )
        return principal

    return Depends(dependency)
