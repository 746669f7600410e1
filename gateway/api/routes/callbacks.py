"""``POST /v1/callbacks/{vendor}/{attempt}``: vendors report that a job moved.

No API key: vendors cannot hold one. The body is not trusted (see
``gateway.services.callbacks``); the answer is 204 whether or not a shot was woken,
401 for a bad signature, 503 when fal's signing keys cannot be fetched.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from gateway.api.deps import RuntimeDep
from gateway.api.problems import responses

router = APIRouter(tags=["callbacks"])

_Id = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post(
    "/v1/callbacks/{vendor}/{attempt_id}", status_code=204, responses=responses(401, 404, 422, 503)
)
async def vendor_callback(
    vendor: _Id, attempt_id: _Id, request: Request, runtime: RuntimeDep
) -> Response:
    body = await request.body()
    await runtime.callbacks.receive(vendor, attempt_id, request.headers, body)
    return Response(status_code=204)
