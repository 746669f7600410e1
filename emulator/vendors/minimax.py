"""MiniMax Hailuo video API v1, from the vendor reference (vendors.md §8).

Mounted at ``{emulator}/minimax``, which stands for ``https://api.minimax.io``.

- ``POST /v1/video_generation {model, prompt, first_frame_image, duration 6|10, resolution
  "768P"|"1080P", prompt_optimizer}`` → ``{task_id, base_resp}``. ``I2V-*`` models need
  ``first_frame_image`` (a URL or a data URL); 1080P is 6 s only (third-party schema).
- ``GET /v1/query/video_generation?task_id=`` → ``{task_id, status, file_id, video_width,
  video_height, base_resp}``; status ``Preparing`` (first half of the queue) → ``Queueing``
  → ``Processing`` → ``Success`` | ``Fail``. ``file_id`` is set on Success only.
- ``GET /v1/files/retrieve?file_id=`` → ``{file: {file_id, bytes, created_at, filename,
  purpose, download_url}, base_resp}``; the download URL needs no key.

**Errors come back as HTTP 200** with ``base_resp {status_code ≠ 0, status_msg}``, as the
reference says: a missing or malformed ``Authorization: Bearer`` is 1004; bad parameters
2013 (code UNCONFIRMED); an unknown task or file id 2013 too (the reference documents no
not-found code; UNCONFIRMED); a rate-limit from the chaos knobs is 1002 (HTTP 200, with
``Retry-After``). Other chaos (5xx, malformed, dropped) is transport-level. Responses carry a
``Trace-Id`` header. A failed task is ``status: "Fail"``; its ``base_resp`` carries the
``fail_code`` knob when that is a documented code number (1026/1027 sensitive input/output,
1000…), else ``status_code`` 0 (what a failed task's ``base_resp`` holds is UNCONFIRMED).
No cancel and no callbacks in v1 (``callback_url`` is UNCONFIRMED; it is ignored).

The ``create_error`` knob's refusals (:data:`CREATE_ERRORS`) are HTTP 200s too: billing
1008 (insufficient balance), bad_input 2013, content 1026 (the reference marks 1008 and
2013 UNCONFIRMED). It documents no quota code (1002 is the rate limit, which
``rate_limit_rate`` gives) and no unavailable one: those are the generic HTTP answers.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.app import VendorError, VendorRoutes, chaos_response, file_url
from emulator.core import CreateError, EmJob, Emulator, sample_mp4

__all__ = ["CREATE_ERRORS", "NAME", "routes"]

NAME = "minimax"

OK = {"status_code": 0, "status_msg": "success"}
#: Documented base_resp codes the fail_code knob may name for a failed task.
FAIL_CODES = {
    "1000": "unknown error",
    "1001": "request timeout",
    "1026": "input new_sensitive",
    "1027": "output new_sensitive",
}


def _refusal(code: int, message: str) -> VendorError:
    return VendorError(
        200, {"task_id": "", "base_resp": {"status_code": code, "status_msg": message}}
    )


CREATE_ERRORS: dict[CreateError, VendorError] = {
    "billing": _refusal(1008, "insufficient balance"),
    "bad_input": _refusal(2013, "invalid params"),
    "content": _refusal(1026, "input new_sensitive"),
}
_RESOLUTIONS = frozenset({"768P", "1080P"})
_DURATIONS = frozenset({6, 10})
_SIZES = {"768P": (1366, 768), "1080P": (1920, 1080)}


def _id() -> str:
    return str(uuid.uuid4().int)[:15]


def _answer(body: dict[str, Any], trace: str | None = None) -> JSONResponse:
    return JSONResponse(body, headers={"Trace-Id": trace or uuid.uuid4().hex})


def _refused(code: int, message: str, **fields: Any) -> JSONResponse:
    return _answer({**fields, "base_resp": {"status_code": code, "status_msg": message}})


def _invalid(body: Any) -> str | None:
    """Why a create body is refused (2013), or None."""
    if not isinstance(body, dict):
        return "invalid params, request body must be a JSON object"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "invalid params, model is required"
    image = body.get("first_frame_image")
    if image is not None and not (
        isinstance(image, str) and image.startswith(("http://", "https://", "data:"))
    ):
        return "invalid params, first_frame_image must be a URL or a data URL"
    if model.startswith("I2V") and image is None:
        return f"invalid params, {model} requires first_frame_image"
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return "invalid params, prompt must be a string"
    if not prompt and image is None:
        return "invalid params, prompt is required"
    duration = body.get("duration", 6)
    if isinstance(duration, bool) or duration not in _DURATIONS:
        return f"invalid params, duration {duration!r}: 6 or 10"
    resolution = body.get("resolution", "768P")
    if resolution not in _RESOLUTIONS:
        return f"invalid params, resolution {resolution!r}: 768P or 1080P"
    if resolution == "1080P" and duration != 6:
        return "invalid params, 1080P supports 6 s only"
    return None


def routes(em: Emulator) -> VendorRoutes:
    router = APIRouter()
    files: dict[str, str] = {}  # file_id -> task id

    def check(request: Request) -> JSONResponse | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return _refused(
                1004,
                "login fail: Please carry the API secret key in the 'Authorization' field "
                "of the request header",
            )
        return None

    def chaos(kind: str) -> Response | None:
        failure = chaos_response(
            em,
            kind,
            rate_limit_body={"base_resp": {"status_code": 1002, "status_msg": "rate limit"}},
            rate_limit_status=200,  # MiniMax's errors are HTTP 200s
            vendor=NAME,
            create_errors=CREATE_ERRORS,
        )
        if failure is not None and failure.status_code == 200:
            failure.headers["Trace-Id"] = uuid.uuid4().hex
        return failure

    @router.post("/v1/video_generation")
    async def create(request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos("create")) is not None:
            return failure
        try:
            body = await request.json()
        except ValueError:
            body = None
        if (problem := _invalid(body)) is not None:
            return _refused(2013, problem, task_id="")
        job = em.create(NAME, body["model"], body, job_id=_id())
        job.extra["file_id"] = _id()
        files[job.extra["file_id"]] = job.id
        return _answer({"task_id": job.id, "base_resp": OK})

    @router.get("/v1/query/video_generation")
    async def query(request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos("poll")) is not None:
            return failure
        task_id = request.query_params.get("task_id", "")
        job = em.get(task_id)
        if job is None or job.vendor != NAME:
            return _refused(2013, f"invalid params, task {task_id!r} not found", task_id="")
        return _answer(task_body(job))

    def task_body(job: EmJob) -> dict[str, Any]:
        now = em.clock()
        state = job.state(now)
        body: dict[str, Any] = {"task_id": job.id, "file_id": "", "base_resp": OK}
        if state == "queued":
            halfway = job.created + (job.started - job.created) / 2
            body["status"] = "Preparing" if now < halfway else "Queueing"
        elif state == "running":
            body["status"] = "Processing"
        elif state == "succeeded":
            width, height = _SIZES[job.payload.get("resolution", "768P")]
            body.update(
                status="Success",
                file_id=job.extra["file_id"],
                video_width=width,
                video_height=height,
            )
        else:
            body["status"] = "Fail"
            code = em.knobs.fail_code
            if code in FAIL_CODES:
                body["base_resp"] = {"status_code": int(code), "status_msg": FAIL_CODES[code]}
        return body

    @router.get("/v1/files/retrieve")
    async def retrieve(request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos("poll")) is not None:
            return failure
        file_id = request.query_params.get("file_id", "")
        job = em.get(files.get(file_id, ""))
        if job is None or job.state(em.clock()) != "succeeded":
            return _refused(2013, f"invalid params, file {file_id!r} not found")
        file = {
            "file_id": int(file_id),
            "bytes": len(sample_mp4()),
            "created_at": int(job.finished),
            "filename": "output.mp4",
            "purpose": "video_generation",
            "download_url": file_url(request, job),
        }
        return _answer({"file": file, "base_resp": OK})

    return VendorRoutes(NAME, router)
