"""``/v1/quote`` and ``/v1/models``: the plan and the price, without running anything."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import CurrentPrincipal, ReadPrincipal, RuntimeDep
from gateway.api.problems import responses
from reelgate.types import JobCreate, Model, Quote

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.post("/quote", response_model=Quote, responses=responses(400, 401, 403, 422))
async def quote(body: JobCreate, runtime: RuntimeDep, principal: ReadPrincipal) -> Quote:
    """Priced for the caller's tenant (its markup or discount included)."""
    return runtime.plan(body, principal.markup_bps)


@router.get("/models", response_model=list[Model], responses=responses(401, 429))
async def models(runtime: RuntimeDep, principal: CurrentPrincipal) -> list[Model]:
    return runtime.models()
