"""Runway's wire (API version 2024-11-06): tasks created by text_to_video or
image_to_video, polled at ``/v1/tasks/{id}``, canceled with DELETE."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.app import VendorRoutes, chaos_response, file_url
from emulator.core import EmJob, Emulator

VERSION = "2024-11-06"
_STATUS = {
    "queued": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "canceled": "CANCELLED",
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def routes(em: Emulator) -> VendorRoutes:
    router = APIRouter()

    def check(request: Request) -> JSONResponse | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "Invalid API key")
        if request.headers.get("x-runway-version") != VERSION:
            return _error(400, f"X-Runway-Version must be {VERSION}")
        return None

    async def create(request: Request, needs_image: bool) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "create")) is not None:
            return failure
        body: dict[str, Any] = await request.json()
        if not isinstance(body.get("model"), str) or not body.get("ratio"):
            return _error(400, "model and ratio are required")
        if needs_image and not body.get("promptImage"):
            return _error(400, "promptImage is required")
        job = em.create("runway", body["model"], body)
        return JSONResponse({"id": job.id})

    @router.post("/v1/text_to_video")
    async def text_to_video(request: Request) -> Response:
        return await create(request, needs_image=False)

    @router.post("/v1/image_to_video")
    async def image_to_video(request: Request) -> Response:
        return await create(request, needs_image=True)

    @router.get("/v1/tasks/{task_id}")
    async def task(task_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "poll")) is not None:
            return failure
        job = em.get(task_id)
        if job is None:
            return _error(404, "Task not found")
        return JSONResponse(task_body(job, request))

    def task_body(job: EmJob, request: Request) -> dict[str, Any]:
        now = em.clock()
        state = job.state(now)
        body: dict[str, Any] = {
            "id": job.id,
            "createdAt": datetime.fromtimestamp(job.created, UTC).isoformat(),
            "status": _STATUS[state],
        }
        if state == "running":
            body["progress"] = round(job.progress(now), 3)
        elif state == "succeeded":
            body["output"] = [file_url(request, job)]
        elif state == "failed":
            body["failure"] = "An unexpected error occurred."
            body["failureCode"] = "INTERNAL"
        return body

    @router.delete("/v1/tasks/{task_id}")
    async def cancel(task_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "cancel")) is not None:
            return failure
        job = em.get(task_id)
        if job is None:
            return _error(404, "Task not found")
        em.cancel(job)
        return Response(status_code=204)

    return VendorRoutes("runway", router)
