"""Luma's two wires, from the vendor reference (§4), both under one base URL,
``{emulator}/luma`` (what each API's ``…/v1`` base stands for), so the adapter works there
with either ``api`` setting:

- **Agents API** (``agents.lumalabs.ai/v1``): ``POST /generations`` (201, the generation),
  ``GET /generations/{id}``; states ``queued → processing → completed | failed``;
  ``output[{type, url}]`` when done; ``failure_code`` (the ``fail_code`` knob when it is a
  documented code, else ``generation_failed``) + ``failure_reason`` when failed. No cancel
  and no webhook field. Responses carry ``X-API-Version`` and echo ``X-Request-Id``.
- **Dream Machine API** (legacy, ``api.lumalabs.ai/dream-machine/v1``):
  ``POST /generations/video``, ``GET``/``DELETE /generations/{id}``,
  ``GET /generations?limit&offset``; states ``queued → dreaming → completed | failed``;
  the video at ``assets.video``; ``callback_url`` gets the generation object.

The paths differ except ``GET /generations/{id}``, which shows a generation in the shape
of the API that made it. Dream Machine's alias ``POST /generations`` is not served (it is
the Agents create here). Both take ``Authorization: Bearer <key>``; synchronous errors
carry ``detail`` (a message, or a list of ``{loc, msg, type}`` for validation).
The ``create_error`` knob's refusals (:data:`CREATE_ERRORS`, on both creates) are the
documented statuses with a ``detail``: billing 402, quota 429 (concurrent jobs, with
``Retry-After``), bad_input 422, unavailable 503 (the wording is UNCONFIRMED); a content
refusal is a ``content_moderated`` failure, not a create's: that one is the generic answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.app import VendorError, VendorRoutes, chaos_response, file_url
from emulator.core import CreateError, EmJob, Emulator, State

__all__ = ["API_VERSION", "CREATE_ERRORS", "routes"]

Api = Literal["agents", "dream-machine"]

NAME = "luma"
API_VERSION = "2026-04-01"

_AGENTS_STATE: dict[State, str] = {
    "queued": "queued",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "failed",  # unreachable: the Agents API cannot cancel
}
_DM_STATE: dict[State, str] = {
    "queued": "queued",
    "running": "dreaming",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "failed",  # a deleted generation is 404 before it can show this
}
#: The Agents API's documented ``failure_code`` values (the fail_code knob picks one).
FAILURE_CODES = frozenset(
    {
        "content_moderated",
        "generation_failed",
        "budget_exhausted",
        "output_not_found",
        "image_too_large",
        "unsupported_format",
        "corrupt_input",
        "invalid_request",
        "rate_limited",
    }
)
CREATE_ERRORS: dict[CreateError, VendorError] = {
    "billing": VendorError(402, {"detail": "Insufficient credits: the budget is exhausted."}),
    "quota": VendorError(429, {"detail": "Too many concurrent generations."}, retry_after=True),
    "bad_input": VendorError(
        422, {"detail": [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}]}
    ),
    "unavailable": VendorError(503, {"detail": "Service temporarily unavailable."}),
}
_AGENTS_TYPES = frozenset({"image", "image_edit", "video", "video_edit", "video_reframe"})
_VIDEO_TYPES = frozenset({"video", "video_edit", "video_reframe"})
_AGENTS_DURATIONS = frozenset({"5s", "10s"})
_AGENTS_RESOLUTIONS = frozenset({"540p", "720p", "1080p"})
_DM_DURATIONS = frozenset({"5s", "9s"})
_DM_RESOLUTIONS = frozenset({"540p", "720p", "1080p", "4k"})
_DM_RATIOS = frozenset({"1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _detail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _invalid(field: str, message: str, kind: str = "value_error") -> JSONResponse:
    problem = {"loc": ["body", *field.split(".")], "msg": message, "type": kind}
    return JSONResponse({"detail": [problem]}, status_code=422)


def _failure_code(em: Emulator) -> str:
    code = em.knobs.fail_code
    return code if code in FAILURE_CODES else "generation_failed"


def agents_generation(job: EmJob, now: float, video_url: str, failure_code: str) -> dict[str, Any]:
    """An Agents API generation object."""
    state = job.state(now)
    body: dict[str, Any] = {
        "id": job.id,
        "created_at": _iso(job.created),
        "model": job.payload.get("model"),
        "type": job.payload.get("type", "video"),
        "state": _AGENTS_STATE[state],
        "failure_code": None,
        "failure_reason": None,
        "output": [],
    }
    if state == "succeeded":
        body["output"] = [{"type": "video", "url": video_url}]
    elif state in ("failed", "canceled"):
        body["failure_code"] = failure_code if state == "failed" else "generation_failed"
        body["failure_reason"] = "The generation failed." if state == "failed" else "Canceled."
    return body


def dream_machine_generation(job: EmJob, now: float, video_url: str) -> dict[str, Any]:
    """A Dream Machine generation object (also the callback body)."""
    state = job.state(now)
    body: dict[str, Any] = {
        "id": job.id,
        "generation_type": "video",
        "state": _DM_STATE[state],
        "failure_reason": None,
        "created_at": _iso(job.created),
        "assets": None,
        "model": job.model,
        "request": job.payload,
    }
    if state == "succeeded":
        body["assets"] = {"video": video_url, "image": None, "progress_video": None}
    elif state in ("failed", "canceled"):
        body["failure_reason"] = "The generation failed."
    return body


def routes(em: Emulator) -> VendorRoutes:
    router = APIRouter()

    def check(request: Request) -> JSONResponse | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _detail(401, "Invalid API key")
        return None

    def agents_response(request: Request, body: Any, status: int = 200) -> JSONResponse:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        headers = {"X-Request-Id": request_id, "X-API-Version": API_VERSION}
        return JSONResponse(body, status_code=status, headers=headers)

    def find(job_id: str, api: Api | None = None) -> EmJob | None:
        job = em.get(job_id)
        if job is None or job.vendor != NAME or job.extra.get("deleted"):
            return None
        return job if api is None or job.extra.get("api") == api else None

    async def read_body(request: Request) -> dict[str, Any] | JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _detail(400, "The request body is not valid JSON")
        if not isinstance(body, dict):
            return _invalid("", "Input should be a valid dictionary", "dict_type")
        return body

    # --- Agents API ----------------------------------------------------------------------

    def agents_invalid(body: dict[str, Any]) -> JSONResponse | None:
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return _invalid("prompt", "Field required", "missing")
        kind = body.get("type", "video")
        if kind not in _AGENTS_TYPES:
            return _invalid("type", f"Input should be one of {sorted(_AGENTS_TYPES)}", "enum")
        if kind not in _VIDEO_TYPES:
            return _detail(400, "This emulator generates video types only")
        video = body.get("video") or {}
        if not isinstance(video, dict):
            return _invalid("video", "Input should be a valid dictionary", "dict_type")
        if "duration" in video and video["duration"] not in _AGENTS_DURATIONS:
            return _invalid("video.duration", "Input should be '5s' or '10s'", "enum")
        if "resolution" in video and video["resolution"] not in _AGENTS_RESOLUTIONS:
            return _invalid("video.resolution", "Input should be '540p', '720p' or '1080p'")
        return None

    @router.post("/generations")
    async def agents_create(request: Request) -> Response:
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
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
        if (bad := agents_invalid(body)) is not None:
            return bad
        job = em.create(NAME, str(body.get("model") or ""), body)
        job.extra["api"] = "agents"
        now = em.clock()
        generation = agents_generation(job, now, file_url(request, job), _failure_code(em))
        return agents_response(request, generation, 201)

    # --- Dream Machine API ---------------------------------------------------------------

    def dm_invalid(body: dict[str, Any]) -> JSONResponse | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return _invalid("model", "Field required", "missing")
        if "duration" in body and body["duration"] not in _DM_DURATIONS:
            return _invalid("duration", "Input should be '5s' or '9s'", "enum")
        if "resolution" in body and body["resolution"] not in _DM_RESOLUTIONS:
            return _invalid("resolution", f"Input should be one of {sorted(_DM_RESOLUTIONS)}")
        if "aspect_ratio" in body and body["aspect_ratio"] not in _DM_RATIOS:
            return _invalid("aspect_ratio", f"Input should be one of {sorted(_DM_RATIOS)}")
        callback = body.get("callback_url")
        if callback is not None and not (
            isinstance(callback, str) and callback.startswith(("http://", "https://"))
        ):
            return _invalid("callback_url", "Input should be a valid URL", "url_parsing")
        return None

    @router.post("/generations/video")
    async def dm_create(request: Request) -> Response:
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
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
        if (bad := dm_invalid(body)) is not None:
            return bad
        job = em.create(NAME, body["model"], body, callback_url=body.get("callback_url"))
        job.extra["api"] = "dream-machine"
        generation = dream_machine_generation(job, em.clock(), file_url(request, job))
        return JSONResponse(generation, status_code=201)

    # --- both --------------------------------------------------------------------------

    @router.get("/generations/{generation_id}")
    async def get(generation_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "poll", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        job = find(generation_id)
        if job is None:
            return _detail(404, "Generation not found")
        now, video_url = em.clock(), file_url(request, job)
        if job.extra.get("api") == "dream-machine":
            return JSONResponse(dream_machine_generation(job, now, video_url))
        return agents_response(request, agents_generation(job, now, video_url, _failure_code(em)))

    @router.get("/generations")
    async def dm_list(request: Request, limit: int = 10, offset: int = 0) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "poll", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        jobs = [
            j
            for j in sorted(em.jobs.values(), key=lambda j: j.created, reverse=True)
            if find(j.id, "dream-machine") is not None
        ]
        limit, offset = max(1, min(limit, 100)), max(0, offset)
        now, page = em.clock(), jobs[offset : offset + limit]
        return JSONResponse(
            {
                "generations": [
                    dream_machine_generation(j, now, file_url(request, j)) for j in page
                ],
                "count": len(page),
                "has_more": offset + limit < len(jobs),
                "limit": limit,
                "offset": offset,
            }
        )

    @router.delete("/generations/{generation_id}")
    async def dm_delete(generation_id: str, request: Request) -> Response:
        """Dream Machine deletes a generation (a running one stops; no callback follows).
        The Agents API has no delete: its generations answer 405."""
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "cancel", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        job = find(generation_id)
        if job is None:
            return _detail(404, "Generation not found")
        if job.extra.get("api") != "dream-machine":
            return _detail(405, "Method Not Allowed")
        em.cancel(job)
        job.extra["deleted"] = True
        job.callback_sent = True  # nothing left to report
        return Response(status_code=204)

    def callback_body(job: EmJob, base_url: str) -> dict[str, Any]:
        """Dream Machine POSTs the generation object to ``callback_url``."""
        video_url = f"{base_url.rstrip('/')}/_emulator/files/{job.id}.mp4"
        return dream_machine_generation(job, em.clock(), video_url)

    return VendorRoutes(NAME, router, callback_body)


_RATE_LIMITED = {"detail": "Rate limit exceeded"}
