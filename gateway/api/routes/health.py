"""Liveness (the process answers) and readiness (its database answers)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import RuntimeDep
from gateway.api.problems import responses
from gateway.services.errors import ServiceError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=responses(503))
async def readyz(runtime: RuntimeDep) -> dict[str, str]:
    try:
        runtime.db.ping()
    except Exception as exc:
        raise ServiceError(
            503, "database_unavailable", f"The database does not answer: {exc}"
        ) from exc
    return {"status": "ready", "database": "ok"}
