"""``/v1/shots/{id}/content``: a shot's video, seekable (HTTP Range) for a browser <video>."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.api.deps import ReadPrincipal, RuntimeDep
from gateway.api.problems import responses
from gateway.api.streaming import stream_object

router = APIRouter(prefix="/v1", tags=["shots"])


@router.get(
    "/shots/{shot_id}/content",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The shot's video"},
        206: {"content": {"video/mp4": {}}, "description": "A byte range of it"},
        307: {"description": "Fetch it from signed storage URL (REELGATE_STORAGE_REDIRECT)"},
        **responses(401, 403, 404, 409, 410, 416, 503),
    },
)
async def shot_content(
    shot_id: str, request: Request, runtime: RuntimeDep, principal: ReadPrincipal
) -> Response:
    obj = runtime.content.shot_object(principal.tenant_id, shot_id)
    return await stream_object(
        runtime.store,
        obj,
        request,
        filename=f"{shot_id}.mp4",
        redirect_ttl_s=runtime.redirect_ttl_s(),
    )
