"""ByteDance Seedance on BytePlus ModelArk, from the vendor reference (vendors.md §8).

Mounted at ``{emulator}/seedance``, which stands for the full API base
``https://ark.ap-southeast.bytepluses.com/api/v3``: paths start at ``/contents/…``.

- ``POST /contents/generations/tasks {model, content[], ratio, duration (int s), resolution
  480p|720p|1080p, seed, watermark, generate_audio, camera_fixed, return_last_frame,
  service_tier default|flex, draft}`` → ``{id: "cgt-…"}``. ``content`` holds a ``text`` item
  and/or ``image_url``/``video_url``/``audio_url`` items (``{type, <type>: {url}, role?}``).
- ``GET /contents/generations/tasks/{id}`` → ``{id, model, status, content: {video_url,
  last_frame_url?}, usage: {completion_tokens, total_tokens}, created_at, updated_at (unix
  s), seed, resolution, ratio, duration, framespersecond, execution_expires_after}``;
  status ``queued → running → succeeded | failed``, ``cancelled`` after a cancel. ``content``
  and ``usage`` come with success (tokens = w·h·s·24/1024, the formula the addendum quotes
  for Seedance 2.0 on fal; other models UNCONFIRMED); a failure carries ``error{code,
  message}`` (the ``fail_code`` knob when it is a CamelCase ModelArk-style code, else
  ``InternalServiceError``).
- ``DELETE /contents/generations/tasks/{id}`` cancels a queued task or deletes a terminal
  record (then 404); both answer ``200 {}``. A running task cannot be canceled or deleted:
  409 ``TaskNotCancellable`` (the refusal's status and code are the emulator's own: the
  reference documents none).

Auth is ``Authorization: Bearer <ARK key>``; errors are ``{"error": {"code", "message"}}``:
401 ``AuthenticationError``, 400 ``InvalidParameter``, 404 ``ResourceNotFound`` (ModelArk's
public code names; not in the reference, UNCONFIRMED). No callbacks.

The ``create_error`` knob's refusals (:data:`CREATE_ERRORS`) are that error body with
ModelArk's code names (UNCONFIRMED, as above): billing 403 ``AccountOverdueError``, quota 429
``QuotaExceeded``, bad_input 400 ``InvalidParameter``, content 400
``InputTextSensitiveContentDetected``, unavailable 500 ``InternalServiceError``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.app import VendorError, VendorRoutes, chaos_response, file_url
from emulator.core import CreateError, EmJob, Emulator

__all__ = ["CREATE_ERRORS", "NAME", "routes"]

NAME = "seedance"
TASKS = "/contents/generations/tasks"
_RESOLUTIONS = {"480p": (864, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
_ITEM_TYPES = frozenset({"text", "image_url", "video_url", "audio_url"})
_ROLES = {
    "image_url": {None, "first_frame", "last_frame", "reference_image"},
    "video_url": {None, "reference_video"},
    "audio_url": {None, "reference_audio"},
}
_TIERS = frozenset({"default", "flex"})
_FPS = 24
_EXPIRES_S = 172800
_CODE = re.compile(r"[A-Z][A-Za-z0-9.]*")
_RATE_LIMITED = {"error": {"code": "RateLimitExceeded", "message": "Request rate limit exceeded."}}


def _refusal(status: int, code: str, message: str) -> VendorError:
    return VendorError(status, {"error": {"code": code, "message": message}})


CREATE_ERRORS: dict[CreateError, VendorError] = {
    "billing": _refusal(403, "AccountOverdueError", "Your account has an overdue balance."),
    "quota": _refusal(429, "QuotaExceeded", "The request has exceeded the account's quota."),
    "bad_input": _refusal(400, "InvalidParameter", "A parameter in the request is invalid."),
    "content": _refusal(
        400,
        "InputTextSensitiveContentDetected",
        "The request failed because the input text may contain sensitive information.",
    ),
    "unavailable": _refusal(500, "InternalServiceError", "The service hit an internal error."),
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _task_id(now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S")
    return f"cgt-{stamp}-{uuid.uuid4().hex[:8]}"


def _invalid(body: Any) -> str | None:
    """Why a create body is refused (400 InvalidParameter), or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "The parameter `model` must be specified."
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return "The parameter `content` must be a non-empty list."
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in _ITEM_TYPES:
            return f"The content item type {kind!r} is not supported."
        if kind == "text":
            if not isinstance(item.get("text"), str):
                return "A text content item needs `text`."
            continue
        ref = item.get(kind)
        if not isinstance(ref, dict) or not isinstance(ref.get("url"), str) or not ref["url"]:
            return f"A {kind} content item needs `{kind}.url`."
        if item.get("role") not in _ROLES[kind]:
            return f"The role {item.get('role')!r} is not valid for {kind}."
    duration = body.get("duration", 5)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= 30:
        return f"The parameter `duration` {duration!r} must be an integer number of seconds."
    if body.get("resolution", "720p") not in _RESOLUTIONS:
        return "The parameter `resolution` must be one of 480p, 720p, 1080p."
    if body.get("service_tier", "default") not in _TIERS:
        return "The parameter `service_tier` must be default or flex."
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return "The parameter `seed` must be an integer."
    return None


def task_body(em: Emulator, job: EmJob, video_url: str) -> dict[str, Any]:
    now = em.clock()
    state = job.state(now)
    changed = max(t for t in (job.created, job.started, job.finished) if t <= now)
    if job.canceled_at is not None:
        changed = job.canceled_at
    payload = job.payload
    resolution = payload.get("resolution", "720p")
    duration = payload.get("duration", 5)
    body: dict[str, Any] = {
        "id": job.id,
        "model": job.model,
        "status": "cancelled" if state == "canceled" else state,
        "created_at": int(job.created),
        "updated_at": int(max(changed, job.created)),
        "seed": job.extra["seed"],
        "resolution": resolution,
        "ratio": payload.get("ratio", "16:9"),
        "duration": duration,
        "framespersecond": _FPS,
        "execution_expires_after": _EXPIRES_S,
    }
    if state == "succeeded":
        body["content"] = {"video_url": video_url}
        if payload.get("return_last_frame"):
            body["content"]["last_frame_url"] = video_url  # the emulator has no image output
        width, height = _RESOLUTIONS[resolution]
        tokens = width * height * duration * _FPS // 1024
        body["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
    elif state == "failed":
        code = em.knobs.fail_code
        code = code if _CODE.fullmatch(code) else "InternalServiceError"
        body["error"] = {"code": code, "message": "The video generation task failed."}
    return body


def routes(em: Emulator) -> VendorRoutes:
    router = APIRouter()

    def check(request: Request) -> JSONResponse | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return _error(
                401,
                "AuthenticationError",
                "The API key in the request is missing or invalid.",
            )
        return None

    def find(task_id: str) -> EmJob | None:
        job = em.get(task_id)
        if job is None or job.vendor != NAME or job.extra.get("deleted"):
            return None
        return job

    def not_found(task_id: str) -> JSONResponse:
        return _error(404, "ResourceNotFound", f"The specified task {task_id} is not found.")

    @router.post(TASKS)
    async def create(request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        failure = chaos_response(
            em,
            "create",
            rate_limit_body=_RATE_LIMITED,
            vendor=NAME,
            create_errors=CREATE_ERRORS,
        )
        if failure is not None:
            return failure
        try:
            body = await request.json()
        except ValueError:
            body = None
        if (problem := _invalid(body)) is not None:
            return _error(400, "InvalidParameter", problem)
        job = em.create(NAME, body["model"], body, job_id=_task_id(em.clock()))
        seed = body.get("seed")
        job.extra["seed"] = (
            seed if isinstance(seed, int) and seed >= 0 else uuid.uuid4().int % 2**31
        )
        return JSONResponse({"id": job.id})

    @router.get(TASKS + "/{task_id}")
    async def task(task_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "poll", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        job = find(task_id)
        if job is None:
            return not_found(task_id)
        return JSONResponse(task_body(em, job, file_url(request, job)))

    @router.delete(TASKS + "/{task_id}")
    async def cancel(task_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "cancel", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        job = find(task_id)
        if job is None:
            return not_found(task_id)
        state = job.state(em.clock())
        if state == "running":
            return _error(409, "TaskNotCancellable", "A running task cannot be cancelled.")
        if state == "queued":
            em.cancel(job)
        else:
            job.extra["deleted"] = True
        return JSONResponse({})

    return VendorRoutes(NAME, router)
