"""``/v1/balance`` and ``/v1/usage``: the caller's tenant's money."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response

from gateway.api.deps import ReadPrincipal, RuntimeDep
from gateway.api.problems import responses
from gateway.services.billing import usage_csv
from gateway.services.errors import ServiceError
from reelgate.types import Balance, ProblemField, Usage

router = APIRouter(prefix="/v1", tags=["billing"])


def _time_query(alias: str) -> Any:
    return Query(
        alias=alias,
        pattern=r"^\d{4}-\d{2}-\d{2}",
        max_length=40,
        description="ISO 8601 (2026-11-01 or 2026-11-01T00:00:00Z); UTC when no offset.",
    )


def _time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        field = ProblemField(field=name, message=f"{value!r} is not an ISO 8601 time")
        raise ServiceError(
            422, "validation_error", f"Invalid fields: {name}.", errors=[field]
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/balance", response_model=Balance, responses=responses(401, 403))
async def balance(runtime: RuntimeDep, principal: ReadPrincipal) -> Balance:
    return runtime.billing.balance(principal.tenant_id)


@router.get(
    "/usage",
    response_model=Usage,
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV for Accept: text/csv"},
        **responses(401, 403, 422),
    },
)
async def usage(
    runtime: RuntimeDep,
    principal: ReadPrincipal,
    start: Annotated[str | None, _time_query(alias="from")] = None,
    end: Annotated[str | None, _time_query(alias="to")] = None,
    group_by: Literal["model", "day", "key"] = "model",
    accept: Annotated[str | None, Header()] = None,
) -> Usage | Response:
    """Captured spend in ``[from, to)`` (default: this calendar month), by model, day or key."""
    report = runtime.billing.usage(
        principal.tenant_id, _time("from", start), _time("to", end), group_by
    )
    if accept and "text/csv" in accept:
        return Response(usage_csv(report), media_type="text/csv")
    return report
