"""Typed dependencies: the runtime container and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.runtime import Runtime
from gateway.services.auth import Principal
from gateway.services.errors import ServiceError

__all__ = ["CurrentPrincipal", "RuntimeDep"]

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
    principal = runtime.auth.cached(token) or await run_in_threadpool(
        runtime.auth.authenticate, token
    )
    if principal is None:
        raise ServiceError(
            401, "invalid_api_key", "The API key is not valid or was revoked.", headers=challenge
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
