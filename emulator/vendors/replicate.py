"""Replicate's predictions API, from the vendor reference (§7). Base URL ``{emulator}/replicate``.

- Create ``POST /v1/models/{owner}/{name}/predictions`` ``{input, webhook?,
  webhook_events_filter?}``, ``POST /v1/predictions`` ``{version, input}`` or
  ``POST /v1/deployments/{owner}/{name}/predictions`` → 201 and the prediction.
  ``Prefer: wait[=N]`` (N ≤ 60, vendor seconds) holds the answer until the prediction ends
  or N passes.
- ``GET /v1/predictions/{id}``; ``POST /v1/predictions/{id}/cancel`` → 200, the prediction.
- States ``starting → processing → succeeded | failed | canceled``; ``output`` is the
  video URL; ``logs`` carry a tqdm line (``45%|████      | 9/20``), the only progress
  Replicate reports; ``metrics.predict_time`` once ended.
- Errors are RFC 7807 problems ``{title, status, detail}``; 429 says
  ``Request was throttled. Your rate limit resets in ~Ns.``
- Webhooks: the body is the prediction object. Replicate signs them the Standard Webhooks
  way: headers ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` =
  ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the base64-decoded
  part of :data:`SIGNING_SECRET` after ``whsec_`` (also served at
  ``GET /v1/webhooks/default/secret``). :func:`webhook_headers` computes them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.app import VendorRoutes, chaos_response, file_url
from emulator.core import EmJob, Emulator, State

__all__ = ["SIGNING_SECRET", "routes", "sign", "webhook_headers"]

NAME = "replicate"
#: The account's webhook signing secret (``whsec_`` + base64 key). Tests and benchmarks
#: may replace it; it is read each time a secret is served or a webhook is signed.
SIGNING_SECRET = "whsec_" + base64.b64encode(b"reelgate-emulator-replicate-key!").decode()

_STATUS: dict[State, str] = {
    "queued": "starting",
    "running": "processing",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}
_EVENTS = frozenset({"start", "output", "logs", "completed"})
_STEPS = 20  # the emulated model's denoising steps, for the tqdm line in the logs
_PREFER_WAIT = re.compile(r"(?:^|[\s,;])wait(?:=(\d+))?(?:$|[\s,;])")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(
    job: EmJob, body: bytes, *, timestamp: int | None = None, secret: str | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers for the completion webhook of ``job``, whose raw
    JSON body is ``body``."""
    msg_id = f"msg_{job.id}_completed"
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret or SIGNING_SECRET, msg_id, ts, body),
    }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def _tqdm(fraction: float) -> str:
    done = min(_STEPS, int(fraction * _STEPS))
    bar = "█" * (done // 2) + " " * (_STEPS // 2 - done // 2)
    return f"{round(100 * done / _STEPS):3d}%|{bar}| {done}/{_STEPS}"


def prediction(
    job: EmJob, now: float, *, base_url: str, video_url: str, fail_code: str
) -> dict[str, Any]:
    """The prediction object (also the webhook body). ``base_url`` is the emulator's root."""
    state = job.state(now)
    api = f"{base_url.rstrip('/')}/{NAME}/v1/predictions/{job.id}"
    ended = state in ("succeeded", "failed", "canceled")
    stopped = job.canceled_at if state == "canceled" else None  # set when canceled
    completed_at = job.finished if stopped is None else stopped
    started = (now if stopped is None else stopped) >= job.started
    body: dict[str, Any] = {
        "id": job.id,
        "model": job.model,
        "version": job.extra.get("version"),
        "input": job.payload.get("input"),
        "logs": "",
        "output": None,
        "data_removed": False,
        "error": None,
        "status": _STATUS[state],
        "created_at": _iso(job.created),
        "started_at": _iso(job.started) if started else None,
        "completed_at": _iso(completed_at) if ended else None,
        "urls": {"get": api, "cancel": f"{api}/cancel"},
        "metrics": {},
    }
    if state == "running":
        body["logs"] = _tqdm(job.progress(now))
    elif state == "succeeded":
        body["logs"] = _tqdm(1.0)
        body["output"] = video_url
    elif state == "failed":
        body["error"] = f"{fail_code}: the model failed to generate the video"
    if state in ("succeeded", "failed"):
        body["metrics"] = {"predict_time": round(job.finished - job.started, 3)}
    return body


def routes(em: Emulator) -> VendorRoutes:
    router = APIRouter()

    def check(request: Request) -> JSONResponse | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return None

    def render(job: EmJob, request: Request) -> dict[str, Any]:
        return prediction(
            job,
            em.clock(),
            base_url=str(request.base_url),
            video_url=file_url(request, job),
            fail_code=em.knobs.fail_code,
        )

    def throttled() -> dict[str, Any]:
        wait = f"{em.knobs.retry_after_s:g}"
        return {
            "title": "Request was throttled",
            "status": 429,
            "detail": f"Request was throttled. Your rate limit resets in ~{wait}s.",
        }

    async def create(request: Request, model: str, *, versioned: bool = False) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (
            failure := chaos_response(em, "create", rate_limit_body=throttled(), vendor="replicate")
        ) is not None:
            return failure
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "Invalid JSON", "The request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return _problem(422, "Input validation failed", "input: input is required")
        version = body.get("version")
        if versioned and not (isinstance(version, str) and version):
            return _problem(422, "Input validation failed", "version: version is required")
        webhook = body.get("webhook")
        if webhook is not None and not (
            isinstance(webhook, str) and webhook.startswith(("http://", "https://"))
        ):
            return _problem(422, "Input validation failed", "webhook: must be a valid URL")
        events = body.get("webhook_events_filter")
        if events is not None and not (isinstance(events, list) and set(events) <= _EVENTS):
            detail = f"webhook_events_filter: each must be one of {sorted(_EVENTS)}"
            return _problem(422, "Input validation failed", detail)
        job = em.create(NAME, str(version) if versioned else model, body, callback_url=webhook)
        job.extra["version"] = version if versioned else None
        await _prefer_wait(request, job)
        return JSONResponse(render(job, request), status_code=201)

    async def _prefer_wait(request: Request, job: EmJob) -> None:
        """``Prefer: wait[=N]``: hold until the prediction ends or N vendor seconds pass."""
        match = _PREFER_WAIT.search(request.headers.get("prefer", ""))
        if match is None:
            return
        hold = min(int(match.group(1) or 60), 60) / em.knobs.time_scale
        deadline = time.monotonic() + hold
        while job.state(em.clock()) in ("queued", "running") and time.monotonic() < deadline:
            await asyncio.sleep(min(0.02, max(deadline - time.monotonic(), 0)))

    @router.post("/v1/models/{owner}/{name}/predictions")
    async def create_by_model(owner: str, name: str, request: Request) -> Response:
        return await create(request, f"{owner}/{name}")

    @router.post("/v1/deployments/{owner}/{name}/predictions")
    async def create_by_deployment(owner: str, name: str, request: Request) -> Response:
        return await create(request, f"{owner}/{name}")

    @router.post("/v1/predictions")
    async def create_by_version(request: Request) -> Response:
        return await create(request, "", versioned=True)

    @router.get("/v1/predictions/{prediction_id}")
    async def get(prediction_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "poll", rate_limit_body=throttled())) is not None:
            return failure
        job = em.get(prediction_id)
        if job is None or job.vendor != NAME:
            return _problem(404, "Not found", "The requested resource could not be found.")
        return JSONResponse(render(job, request))

    @router.post("/v1/predictions/{prediction_id}/cancel")
    async def cancel(prediction_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "cancel", rate_limit_body=throttled())) is not None:
            return failure
        job = em.get(prediction_id)
        if job is None or job.vendor != NAME:
            return _problem(404, "Not found", "The requested resource could not be found.")
        em.cancel(job)
        return JSONResponse(render(job, request))

    @router.get("/v1/webhooks/default/secret")
    async def secret(request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        return JSONResponse({"key": SIGNING_SECRET})

    def callback_body(job: EmJob, base_url: str) -> dict[str, Any]:
        """The webhook body: the prediction object, as a GET would show it."""
        video_url = f"{base_url.rstrip('/')}/_emulator/files/{job.id}.mp4"
        return prediction(
            job, em.clock(), base_url=base_url, video_url=video_url, fail_code=em.knobs.fail_code
        )

    return VendorRoutes(NAME, router, callback_body, webhook_headers)
