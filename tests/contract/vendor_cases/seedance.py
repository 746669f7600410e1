"""Seedance on BytePlus ModelArk as ``vendors.md`` §8 documents it.

Shapes: vercel/ai's ByteDance provider and its recorded task
(``issue-17883-status-response.json``); errors are ``{"error": {"code", "message"}}``.
Error codes beyond the reference are ModelArk's public error table (UNCONFIRMED there).
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.base import (
    BackendFailure,
    BackendJobLost,
    ContentRejected,
    Failure,
    GenerationRequest,
    InvalidInput,
    JobStatus,
    RateLimited,
    RetryableError,
)
from adapters.seedance import SeedanceAdapter

from .base import Case, ErrorCase, Exchange, Reply, State, video

API = "https://ark.ap-southeast.bytepluses.com/api/v3"
KEY = "ark_key"
TASK = "cgt-20260828062711-hj94q"
CDN = "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com"
VIDEO_URL = f"{CDN}/seedance-1-0-pro/recorded-video.mp4"


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "seedance-1-0-pro-250528",
        "prompt": "A harbour at dawn, the camera pans left",
        "negative_prompt": "blur",
        "duration_s": 5,
        "fps": 24,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "seed": 17918,
    }
    return GenerationRequest(**{**fields, **overrides})


def task(status: str, **extra: Any) -> dict[str, Any]:
    """A task record as ModelArk returns it (recorded in vercel/ai's fixture)."""
    record: dict[str, Any] = {
        "id": TASK,
        "model": "seedance-1-0-pro-250528",
        "status": status,
        "created_at": 1787869631,
        "updated_at": 1787869648,
        "seed": 17918,
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "framespersecond": 24,
        "service_tier": "default",
        "execution_expires_after": 172800,
        "draft": False,
        "priority": 0,
    }
    if status == "succeeded":
        record["content"] = {
            "video_url": VIDEO_URL,
            "last_frame_url": f"{CDN}/seedance-1-0-pro/recorded-video_last-frame.png",
        }
        record["usage"] = {"completion_tokens": 19845, "total_tokens": 19845}
        record["output_format"] = "mp4"
    return {**record, **extra}


def refusal(status: int, code: str, message: str = "it went wrong", **headers: str) -> Reply:
    body = {"error": {"code": code, "message": f"{message}. Request id: 0217"}}
    return Reply(status, body=body, headers=headers)


def make(transport: httpx.AsyncBaseTransport) -> SeedanceAdapter:
    return SeedanceAdapter(KEY, client=httpx.AsyncClient(transport=transport, base_url=API))


def _state(raw: str, body: dict[str, Any], **expect: Any) -> State:
    return State(raw, Reply(body=body), JobStatus(raw_state=raw, next_poll_s=3.0, **expect))


def _refused(op: Any, reply: Reply, kind: Any, code: str, after: float | None = None) -> ErrorCase:
    return ErrorCase(op, reply, kind, code, after, note=reply.body["error"]["code"])


RATE = "RateLimitExceeded.EndpointRPMExceeded"
ERRORS = (
    _refused("submit", refusal(429, RATE, **{"Retry-After": "7"}), RateLimited, "rate_limited", 7),
    _refused("submit", refusal(429, "ServerOverloaded"), RateLimited, "rate_limited"),
    _refused("submit", refusal(429, "QuotaExceeded"), BackendFailure, "billing"),
    _refused("submit", refusal(429, "SetLimitExceeded"), BackendFailure, "billing"),
    _refused("submit", refusal(403, "AccountOverdueError"), BackendFailure, "billing"),
    ErrorCase(  # ModelArk dedupes no creates: the task may exist
        "submit",
        refusal(500, "InternalServiceError"),
        RetryableError,
        "server_error",
        outcome_unknown=True,
        note="InternalServiceError",
    ),
    ErrorCase("poll", Reply(502, text="<html>bad gateway</html>"), RetryableError, "server_error"),
    _refused("submit", refusal(400, "InvalidParameter"), InvalidInput, "invalid_input"),
    _refused("submit", refusal(400, "MissingParameter"), InvalidInput, "invalid_input"),
    _refused(
        "submit",
        refusal(400, "InputTextSensitiveContentDetected"),
        ContentRejected,
        "content_rejected",
    ),
    _refused(
        "submit",
        refusal(400, "InputImageSensitiveContentDetected"),
        ContentRejected,
        "content_rejected",
    ),
    _refused("submit", refusal(400, "InputTextRiskDetection"), ContentRejected, "content_rejected"),
    _refused("submit", refusal(401, "AuthenticationError"), BackendFailure, "auth_failed"),
    _refused("submit", refusal(403, "AccessDenied"), BackendFailure, "auth_failed"),
    _refused(
        "submit", refusal(404, "InvalidEndpointOrModel.NotFound"), BackendFailure, "not_found"
    ),
    _refused("poll", refusal(404, "ResourceNotFound"), BackendJobLost, "not_found"),
    _refused("cancel", refusal(404, "ResourceNotFound"), BackendJobLost, "not_found"),
    ErrorCase("download", Reply(404, text="NoSuchKey"), BackendJobLost, "not_found"),
    ErrorCase("download", Reply(503), RetryableError, "server_error"),
    ErrorCase("poll", Reply(body={"id": TASK}), BackendFailure, "unknown_state", note="no-status"),
    ErrorCase(
        "poll",
        Reply(body=task("succeeded", content={})),
        RetryableError,
        "malformed",
        note="no-video",
    ),
    ErrorCase(
        "submit",
        Reply(body={"task_id": TASK}),
        RetryableError,
        "malformed",
        outcome_unknown=True,
        note="no-id",
    ),
)

CASES = (
    Case(
        id="seedance",
        make=make,
        declares=("seedance", False, True),
        auth={"authorization": f"Bearer {KEY}"},
        request=request(),
        submit=Exchange("POST", f"{API}/contents/generations/tasks", Reply(body={"id": TASK})),
        sent={
            "model": "seedance-1-0-pro-250528",
            "content": [{"type": "text", "text": "A harbour at dawn, the camera pans left"}],
            "ratio": "16:9",
            "duration": 5,
            "resolution": "720p",
            "seed": 17918,
        },
        job_id=TASK,
        poll_after_s=3.0,
        poll_url=f"{API}/contents/generations/tasks/{TASK}",
        states=(
            _state("queued", task("queued"), state="queued"),
            _state("running", task("running"), state="running"),
            _state(
                "succeeded",
                task("succeeded"),
                state="succeeded",
                output_url=VIDEO_URL,
                # 19,845 completion tokens x $2.50 per million (UNCONFIRMED default rate)
                cost_usd_micros=49_613,
                vendor_usage={"completion_tokens": 19845, "total_tokens": 19845},
            ),
            _state(
                "failed",
                task("failed", error={"code": "InternalServiceError", "message": "try later"}),
                state="failed",
                failure=Failure(
                    code="InternalServiceError", message="try later", failure_class="fallback"
                ),
            ),
            _state("cancelled", task("cancelled"), state="canceled"),
            _state(  # UNCONFIRMED in the reference: not run before execution_expires_after
                "expired",
                task("expired"),
                state="failed",
                failure=Failure(
                    code="expired",
                    message="Seedance reported the task expired",
                    failure_class="fallback",
                ),
            ),
        ),
        video=video(VIDEO_URL),
        cancel=Exchange("DELETE", f"{API}/contents/generations/tasks/{TASK}", Reply(body={})),
        unknown_state=Reply(body=task("paused")),
        errors=ERRORS,
    ),
)
