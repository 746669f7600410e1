"""Runway's wire (API version 2024-11-06): tasks created by text_to_video or
image_to_video, polled at ``/v1/tasks/{id}``, canceled with DELETE (vendors.md §3).

A task is ``THROTTLED`` for the ``throttle_s`` knob (over the concurrency limit), then
``PENDING`` for ``queue_s``, ``RUNNING`` (+``progress``), then ``SUCCEEDED`` or ``FAILED``.
A failed task's ``failureCode`` is the ``fail_code`` knob when it is one of the documented
families (:data:`FAILURE_CODES`: ``SAFETY.INPUT.*``, ``INTERNAL.BAD_OUTPUT.CODE01``, …), else
``INTERNAL``. Errors are ``{"error": <message>}``; the ``create_error`` knob's refusals are
:data:`CREATE_ERRORS` (the reference documents the 400 and the load-shedding 503; the daily
quota's 429, without ``Retry-After``, is from the usage tiers page, its wording UNCONFIRMED;
no billing or content refusal of a create is documented: those are the generic ones).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.app import VendorError, VendorRoutes, chaos_response, file_url
from emulator.core import CreateError, EmJob, Emulator

NAME = "runway"
VERSION = "2024-11-06"
#: Documented ``failureCode`` families ([D] errors/task-failures), longest prefix first,
#: with the ``failure`` text the emulator sends for each.
FAILURE_CODES: tuple[tuple[str, str], ...] = (
    ("INPUT_PREPROCESSING.SAFETY.", "The input was flagged by content moderation."),
    ("INPUT_PREPROCESSING.INTERNAL", "The input could not be preprocessed."),
    ("SAFETY.INPUT.", "The input was flagged by content moderation."),
    ("SAFETY.OUTPUT.", "The output was flagged by content moderation."),
    ("ASSET.INVALID", "An input asset is invalid."),
    ("INTERNAL.BAD_OUTPUT.", "The output did not pass quality checks."),
    ("THIRD_PARTY.UNAVAILABLE", "A third-party service is unavailable."),
    ("INTERNAL", "An unexpected error occurred."),
)
CREATE_ERRORS: dict[CreateError, VendorError] = {
    "bad_input": VendorError(400, {"error": "Validation of the request body failed."}),
    "quota": VendorError(429, {"error": "You have reached the daily task limit for this model."}),
    "unavailable": VendorError(503, {"error": "Service unavailable, please retry."}),
}
_STATUS = {
    "queued": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "canceled": "CANCELLED",
}


def _failure(fail_code: str) -> tuple[str, str]:
    """``(failureCode, failure)`` for the ``fail_code`` knob (``INTERNAL`` when undocumented)."""
    for prefix, message in FAILURE_CODES:
        family = prefix if prefix.endswith(".") else f"{prefix}."
        if fail_code == prefix or fail_code.startswith(family):
            return fail_code, message
    return "INTERNAL", FAILURE_CODES[-1][1]


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
        failure = chaos_response(em, "create", vendor=NAME, create_errors=CREATE_ERRORS)
        if failure is not None:
            return failure
        body: dict[str, Any] = await request.json()
        if not isinstance(body.get("model"), str) or not body.get("ratio"):
            return _error(400, "model and ratio are required")
        if needs_image and not body.get("promptImage"):
            return _error(400, "promptImage is required")
        job = em.create(NAME, body["model"], body)
        job.extra["fail_code"] = em.knobs.fail_code
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
            "status": "THROTTLED" if job.throttled(now) else _STATUS[state],
        }
        if state == "running":
            body["progress"] = round(job.progress(now), 3)
        elif state == "succeeded":
            body["output"] = [file_url(request, job)]
        elif state == "failed":
            body["failureCode"], body["failure"] = _failure(job.extra["fail_code"])
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

    return VendorRoutes(NAME, router)
