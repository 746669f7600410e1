"""Kling's official API, from the vendor reference (vendors.md §5, a copy of Kling's docs).

Mounted at ``{emulator}/kling``, which stands for ``https://api-singapore.klingai.com``.

- **Auth**: ``Authorization: Bearer <JWT>``. The token must be three base64url parts with
  header ``alg: HS256`` and claims ``iss`` (the access key) and ``exp``; ``exp`` past is
  401/1004 (re-sign), ``nbf`` in the future 401/1003, missing 401/1001, malformed 401/1002.
  The signature is checked only when :data:`SECRET_KEY` is set (module constant, None by
  default; tests may patch it): a token not signed with it is 401/1000. The access key
  (``iss``) is the account: tasks and ``external_task_id`` are per account.
- **Create**: ``POST /v1/videos/text2video`` and ``/v1/videos/image2video`` → the envelope
  ``{code: 0, message, request_id, data: {task_id, task_status: "submitted", task_info:
  {external_task_id}, created_at, updated_at}}`` (ms). ``duration`` is a string (``"3"``…
  ``"15"``), ``mode`` ``std``/``pro``, ``sound`` ``on``/``off``; image2video needs ``image``,
  a URL or raw base64 (a ``data:`` prefix is refused); ``image_tail``, masks and
  ``camera_control`` are mutually exclusive. ``external_task_id`` is unique per account: a
  second create with the same one is refused 400/1201 (the refusal's wording is UNCONFIRMED).
- **Query**: ``GET /v1/videos/{text2video|image2video}/{task_id|external_task_id}`` →
  ``task_status`` ``submitted → processing → succeed | failed``, ``task_status_msg``,
  ``task_result.videos[{id, url, duration}]`` (+``watermark_url`` when
  ``watermark_info.enabled``) and ``final_unit_deduction`` (its type and rate UNCONFIRMED: a
  string, 1 unit per 5 s in std, 3.5 in pro). ``GET /v1/videos/{endpoint}?pageNum&pageSize``
  lists. Unknown ids are 404/1203. There is no cancel.
- **Callbacks**: ``callback_url`` receives the task object (the query's ``data``) when the
  task finishes (Kling posts on every status change; the emulator sends the final one).

Errors are the envelope with ``data: null`` and the HTTP status of Kling's table; a bad
parameter is 400/1201. A failed task's ``task_status_msg`` names the ``fail_code`` knob.
The ``create_error`` knob's refusals (:data:`CREATE_ERRORS`) are from that table: billing
429/1102 (resource pack depleted), quota 429/1303 (parallel tasks over the resource pack's
limit: retry later), bad_input 400/1201, content 400/1301, unavailable 503/5001 (the
messages' wording is UNCONFIRMED).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.app import VendorError, VendorRoutes, chaos_response, file_url
from emulator.core import CreateError, EmJob, Emulator, State

__all__ = ["CREATE_ERRORS", "NAME", "SECRET_KEY", "routes"]

NAME = "kling"
#: When set, every JWT must be HS256-signed with this secret key (else only its shape and
#: claims are checked).
SECRET_KEY: str | None = None

_STATUS: dict[State, str] = {
    "queued": "submitted",
    "running": "processing",
    "succeeded": "succeed",
    "failed": "failed",
    "canceled": "failed",  # unreachable: Kling has no cancel
}
_ENDPOINTS = ("text2video", "image2video")
_MODES = frozenset({"std", "pro"})
_SOUNDS = frozenset({"on", "off"})
_RATIOS = frozenset({"16:9", "9:16", "1:1"})
_DURATIONS = frozenset(str(s) for s in range(3, 16))
_MAX_PROMPT = 2500
_RATE_LIMITED = {"code": 1302, "message": "request rate limit exceeded", "data": None}


def _envelope(code: int, message: str, data: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": str(uuid.uuid4()), "data": data}


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(_envelope(code, message, None), status_code=status)


def _refusal(status: int, code: int, message: str) -> VendorError:
    return VendorError(status, lambda: _envelope(code, message, None))


CREATE_ERRORS: dict[CreateError, VendorError] = {
    "billing": _refusal(429, 1102, "resource pack depleted or expired"),
    "quota": _refusal(429, 1303, "parallel task over resource pack limit"),
    "bad_input": _refusal(400, 1201, "parameter is invalid"),
    "content": _refusal(400, 1301, "content security policy triggered"),
    "unavailable": _refusal(503, 5001, "service temporarily unavailable"),
}


def _ms(ts: float) -> int:
    return int(ts * 1000)


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _claims(authorization: str) -> tuple[dict[str, Any] | None, JSONResponse | None]:
    """The verified JWT claims, or the 401 to answer."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None, _error(401, 1001, "Authorization is empty")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None, _error(401, 1002, "Authorization is invalid")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error):
        return None, _error(401, 1002, "Authorization is invalid")
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None, _error(401, 1002, "Authorization is invalid")
    if not isinstance(claims.get("iss"), str) or not isinstance(claims.get("exp"), int | float):
        return None, _error(401, 1002, "Authorization is invalid")
    if SECRET_KEY is not None:
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        expected = hmac.new(SECRET_KEY.encode(), signing_input, hashlib.sha256).digest()
        try:
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            signature = b""
        if not hmac.compare_digest(expected, signature):
            return None, _error(401, 1000, "Authentication failed")
    now = time.time()  # JWTs are wall-clock, whatever the emulator's clock
    if claims["exp"] <= now:
        return None, _error(401, 1004, "Authorization has expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now:
        return None, _error(401, 1003, "Authorization is not yet valid")
    return claims, None


def _invalid(endpoint: str, body: Any) -> str | None:
    """Why a create body is refused (400/1201), or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    model = body.get("model_name", "kling-v1")
    if not isinstance(model, str) or not model:
        return "model_name is invalid"
    prompt = body.get("prompt")
    has_prompt = isinstance(prompt, str) and bool(prompt.strip())
    if endpoint == "text2video" and not has_prompt and not body.get("multi_shot"):
        return "prompt is required"
    for field in ("prompt", "negative_prompt"):
        value = body.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > _MAX_PROMPT):
            return f"{field} must be a string of at most {_MAX_PROMPT} characters"
    if body.get("mode", "std") not in _MODES:
        return "mode must be std or pro"
    if body.get("sound", "off") not in _SOUNDS:
        return "sound must be on or off"
    duration = body.get("duration", "5")
    if not isinstance(duration, str) or duration not in _DURATIONS:
        return f"duration {duration!r} is invalid: a string, '3' to '15'"
    cfg = body.get("cfg_scale")
    if cfg is not None and not (isinstance(cfg, int | float) and 0 <= cfg <= 1):
        return "cfg_scale must be within [0, 1]"
    if endpoint == "text2video":
        if body.get("aspect_ratio", "16:9") not in _RATIOS:
            return "aspect_ratio must be 16:9, 9:16 or 1:1"
        return None
    image = body.get("image")
    if not isinstance(image, str) or not image:
        return "image is required"
    for field in ("image", "image_tail"):
        value = body.get(field)
        if isinstance(value, str) and value.startswith("data:"):
            return f"{field}: base64 must not carry a data: prefix"
    exclusive = [
        f for f in ("image_tail", "static_mask", "dynamic_masks", "camera_control") if body.get(f)
    ]
    if len(exclusive) > 1 and not (set(exclusive) <= {"static_mask", "dynamic_masks"}):
        return f"{' and '.join(exclusive)} cannot be used together"
    return None


def _units(job: EmJob) -> str:
    seconds = int(job.payload.get("duration", "5"))
    rate = 3.5 if job.payload.get("mode") == "pro" else 1.0
    return f"{rate * seconds / 5:g}"


def task_data(job: EmJob, now: float, video_url: str) -> dict[str, Any]:
    """Kling's task object (the query's ``data``, also the callback body)."""
    state = job.state(now)
    changed = max(t for t in (job.created, job.started, job.finished) if t <= now)
    data: dict[str, Any] = {
        "task_id": job.id,
        "task_status": _STATUS[state],
        "task_status_msg": "",
        "task_info": {},
        "created_at": _ms(job.created),
        "updated_at": _ms(max(changed, job.created)),
    }
    if external := job.extra.get("external_task_id"):
        data["task_info"]["external_task_id"] = external
    if state == "succeeded":
        video: dict[str, Any] = {
            "id": f"{job.id}-0",
            "url": video_url,
            "duration": str(job.payload.get("duration", "5")),
        }
        watermark = job.payload.get("watermark_info")
        if isinstance(watermark, dict) and watermark.get("enabled"):
            video["watermark_url"] = video_url
        data["task_result"] = {"videos": [video]}
        data["final_unit_deduction"] = _units(job)
    elif state in ("failed", "canceled"):
        data["task_status_msg"] = f"{job.extra.get('fail_code', 'generation_failed')}: task failed"
    return data


def _task_id() -> str:
    return str(uuid.uuid4().int)[:18]


def routes(em: Emulator) -> VendorRoutes:
    router = APIRouter()
    #: (account, external_task_id) -> task_id
    external_ids: dict[tuple[str, str], str] = {}

    def account(request: Request) -> tuple[str | None, JSONResponse | None]:
        claims, bad = _claims(request.headers.get("authorization", ""))
        return (str(claims["iss"]) if claims else None), bad

    def find(endpoint: str, ref: str, owner: str) -> EmJob | None:
        job = em.get(ref)
        if job is None or job.vendor != NAME:
            task_id = external_ids.get((owner, ref))
            job = em.get(task_id) if task_id else None
        if job is None or job.extra.get("account") != owner or job.extra["endpoint"] != endpoint:
            return None
        return job

    async def create(endpoint: str, request: Request) -> Response:
        owner, bad = account(request)
        if bad is not None or owner is None:
            return bad or _error(401, 1000, "Authentication failed")
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
        if (problem := _invalid(endpoint, body)) is not None:
            return _error(400, 1201, problem)
        external = body.get("external_task_id")
        if external is not None and not isinstance(external, str):
            return _error(400, 1201, "external_task_id must be a string")
        if external and (owner, external) in external_ids:
            return _error(400, 1201, "external_task_id already exists")
        callback = body.get("callback_url")
        job = em.create(
            NAME,
            str(body.get("model_name", "kling-v1")),
            body,
            callback_url=callback if isinstance(callback, str) and callback else None,
            job_id=_task_id(),
        )
        job.extra.update(endpoint=endpoint, account=owner, fail_code=em.knobs.fail_code)
        if external:
            job.extra["external_task_id"] = external
            external_ids[(owner, external)] = job.id
        data = {
            "task_id": job.id,
            "task_status": "submitted",
            "task_info": {"external_task_id": external} if external else {},
            "created_at": _ms(job.created),
            "updated_at": _ms(job.created),
        }
        return JSONResponse(_envelope(0, "SUCCEED", data))

    @router.post("/v1/videos/text2video")
    async def text2video(request: Request) -> Response:
        return await create("text2video", request)

    @router.post("/v1/videos/image2video")
    async def image2video(request: Request) -> Response:
        return await create("image2video", request)

    @router.get("/v1/videos/{endpoint}/{ref}")
    async def query(endpoint: str, ref: str, request: Request) -> Response:
        owner, bad = account(request)
        if bad is not None or owner is None:
            return bad or _error(401, 1000, "Authentication failed")
        if (failure := chaos_response(em, "poll", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        job = find(endpoint, ref, owner) if endpoint in _ENDPOINTS else None
        if job is None:
            return _error(404, 1203, "task not found")
        return JSONResponse(
            _envelope(0, "SUCCEED", task_data(job, em.clock(), file_url(request, job)))
        )

    @router.get("/v1/videos/{endpoint}")
    async def listing(endpoint: str, request: Request) -> Response:
        owner, bad = account(request)
        if bad is not None or owner is None:
            return bad or _error(401, 1000, "Authentication failed")
        if (failure := chaos_response(em, "poll", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        if endpoint not in _ENDPOINTS:
            return _error(404, 1203, "resource not found")
        try:
            page = int(request.query_params.get("pageNum", "1"))
            size = int(request.query_params.get("pageSize", "30"))
        except ValueError:
            return _error(400, 1201, "pageNum and pageSize must be integers")
        if not (1 <= page <= 1000 and 1 <= size <= 500):
            return _error(400, 1201, "pageNum is 1..1000, pageSize 1..500")
        jobs = [
            j
            for j in reversed(em.jobs.values())
            if j.vendor == NAME
            and j.extra.get("account") == owner
            and j.extra.get("endpoint") == endpoint
        ][(page - 1) * size : page * size]
        now = em.clock()
        data = [task_data(j, now, file_url(request, j)) for j in jobs]
        return JSONResponse(_envelope(0, "SUCCEED", data))

    def callback_body(job: EmJob, base_url: str) -> dict[str, Any]:
        return task_data(job, em.clock(), f"{base_url}/_emulator/files/{job.id}.mp4")

    return VendorRoutes(NAME, router, callback_body)
