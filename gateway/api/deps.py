"""Typed dependencies: the runtime container and the authenticated principal."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.runtime import Runtime
from gateway.services.auth import ADMIN, READ, WRITE, Principal
from gateway.services.errors import ServiceError
from gateway.tables import utcnow

__all__ = ["AdminPrincipal", "CurrentPrincipal", "ReadPrincipal", "RuntimeDep", "WritePrincipal"]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rg_...`")


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


async def _principal(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or not credentials.credentials:
        raise ServiceError(
            401,
            "missing_api_key",
            "Send an API key as `Authorization: Bearer <key>`.",
            headers=challenge,
        )
    token = credentials.credentials
    # A miss reads the key's row: inline on SQLite, on the database's threads otherwise
    # (``Database.run``), like every other query a request makes.
    principal = runtime.auth.cached(token) or await runtime.db.run(runtime.auth.authenticate, token)
    if principal is None:
        raise ServiceError(
            401, "invalid_api_key", "The API key is not valid or was revoked.", headers=challenge
        )
    if principal.expired(utcnow()):
        raise ServiceError(401, "expired_api_key", "The API key has expired.", headers=challenge)
    throttled = runtime.limiter.check(principal)
    if throttled is not None:
        wait = max(1, math.ceil(throttled.retry_after_s))
        whose = "this tenant's" if throttled.scope == "tenant" else "this API key's"
        raise ServiceError(
            429,
            "rate_limited",
            f"{whose.capitalize()} limit of {throttled.rpm} requests per minute is "
            f"reached: retry in {wait} s.",
            headers={"Retry-After": str(wait)},
            extra={"limit_scope": throttled.scope, "requests_per_minute": throttled.rpm},
        )
    return principal


#: Any valid key (the catalog).
CurrentPrincipal = Annotated[Principal, Depends(_principal)]


def _scoped(scope: str) -> object:
    async def check(principal: CurrentPrincipal) -> Principal:
        if scope not in principal.scopes:
            raise ServiceError(
                403,
                "insufficient_scope",
                f"This API key lacks the {scope!r} scope; it has: "
                f"{', '.join(sorted(principal.scopes)) or 'none'}.",
            )
        return principal

    return Depends(check)


ReadPrincipal = Annotated[Principal, _scoped(READ)]
WritePrincipal = Annotated[Principal, _scoped(WRITE)]
AdminPrincipal = Annotated[Principal, _scoped(ADMIN)]
