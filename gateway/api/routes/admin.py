"""``/v1/admin/...``: tenants, their keys and credits. ``REELGATE_ADMIN_KEY`` or a key
with the ``admin`` scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from gateway.api.deps import AdminPrincipal, RuntimeDep
from gateway.api.problems import responses
from reelgate.types import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    Credit,
    CreditCreate,
    Tenant,
    TenantCreate,
    TenantUpdate,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_ERRORS = responses(400, 401, 403, 404, 422)


@router.post("/tenants", status_code=201, response_model=Tenant, responses=_ERRORS)
async def create_tenant(body: TenantCreate, runtime: RuntimeDep, _: AdminPrincipal) -> Tenant:
    return runtime.tenants.create_tenant(body)


@router.get("/tenants", response_model=list[Tenant], responses=_ERRORS)
async def list_tenants(runtime: RuntimeDep, _: AdminPrincipal) -> list[Tenant]:
    return runtime.tenants.list_tenants()


@router.get("/tenants/{tenant_id}", response_model=Tenant, responses=_ERRORS)
async def get_tenant(tenant_id: str, runtime: RuntimeDep, _: AdminPrincipal) -> Tenant:
    return runtime.tenants.get_tenant(tenant_id)


@router.patch("/tenants/{tenant_id}", response_model=Tenant, responses=_ERRORS)
async def update_tenant(
    tenant_id: str, body: TenantUpdate, runtime: RuntimeDep, _: AdminPrincipal
) -> Tenant:
    return runtime.tenants.update_tenant(tenant_id, body)


@router.post(
    "/tenants/{tenant_id}/keys", status_code=201, response_model=ApiKeyCreated, responses=_ERRORS
)
async def create_key(
    tenant_id: str, body: ApiKeyCreate, runtime: RuntimeDep, _: AdminPrincipal
) -> ApiKeyCreated:
    """The key is in this answer only; it is stored as a keyed hash."""
    return runtime.tenants.create_key(tenant_id, body)


@router.get("/tenants/{tenant_id}/keys", response_model=list[ApiKey], responses=_ERRORS)
async def list_keys(tenant_id: str, runtime: RuntimeDep, _: AdminPrincipal) -> list[ApiKey]:
    return runtime.tenants.list_keys(tenant_id)


@router.delete("/tenants/{tenant_id}/keys/{key_id}", response_model=ApiKey, responses=_ERRORS)
async def revoke_key(tenant_id: str, key_id: str, runtime: RuntimeDep, _: AdminPrincipal) -> ApiKey:
    """Revoke (the row stays, with ``revoked_at``): the key stops working at once here,
    within ``REELGATE_KEY_CACHE_TTL_S`` in other processes."""
    return runtime.tenants.revoke_key(tenant_id, key_id)


@router.post(
    "/tenants/{tenant_id}/credits",
    status_code=201,
    response_model=Credit,
    responses={200: {"model": Credit, "description": "Replayed: the same top-up"}, **_ERRORS},
)
async def add_credits(
    tenant_id: str,
    body: CreditCreate,
    runtime: RuntimeDep,
    _: AdminPrincipal,
    response: Response,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=255)],
) -> Credit:
    credit, replayed = runtime.tenants.add_credits(tenant_id, body, idempotency_key)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return credit
