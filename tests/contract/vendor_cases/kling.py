"""Kling's official API as the copy of its docs in ``vendors.md`` §5 shows it.

Shapes: the create and query envelopes, ``task_status`` values, the HTTP status / ``code``
error table and the JWT claims. The token's clock is injected, so it is the same on every
request and a test can name it.
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
from adapters.kling import KlingAdapter, sign_jwt

from .base import Case, ErrorCase, Exchange, Reply, State, video

API = "https://api-singapore.klingai.com"
AK, SK = "ak_test", "sk_test"
NOW = 1_760_000_000.0
TASK = "CjhDdGhvZG9n"
JOB = f"text2video/{TASK}"
VIDEO_URL = "https://cdn.klingai.test/bs2/upload-kling-api/video.mp4"


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "kling-v2-1-master",
        "prompt": "A harbour at dawn, the camera pans left",
        "negative_prompt": "blur",
        "duration_s": 5,
        "fps": 24,
        "width": 1920,
        "height": 1080,
        "aspect_ratio": "16:9",
        "resolution": "1080p",
    }
    return GenerationRequest(**{**fields, **overrides})


def envelope(data: dict[str, Any] | None, code: int = 0, message: str = "SUCCEED") -> Any:
    return {"code": code, "message": message, "request_id": "req-1", "data": data}


def task(status: str, **extra: Any) -> dict[str, Any]:
    data = {
        "task_id": TASK,
        "task_status": status,
        "task_info": {"external_task_id": "att_1"},
        "created_at": 1722769557708,
        "updated_at": 1722769557708,
        **extra,
    }
    return envelope(data)


SUCCEED = task(
    "succeed",
    task_status_msg="",
    final_unit_deduction="1",
    task_result={
        "videos": [
            {"id": "v1", "url": VIDEO_URL, "watermark_url": VIDEO_URL + "?wm", "duration": "5"}
        ]
    },
)


def refusal(status: int, code: int, message: str = "it went wrong", **headers: str) -> Reply:
    return Reply(status, body=envelope(None, code, message), headers=headers)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def make(transport: httpx.AsyncBaseTransport) -> KlingAdapter:
    client = httpx.AsyncClient(transport=transport, base_url=API)
    return KlingAdapter(f"{AK}:{SK}", client=client, clock=Clock())


def _state(raw: str, body: dict[str, Any], **expect: Any) -> State:
    return State(raw, Reply(body=body), JobStatus(raw_state=raw, next_poll_s=5.0, **expect))


#: A submit refused as bad input looks its external_task_id up once: here, not found.
LOOKUP = (
    Exchange("GET", f"{API}/v1/videos/text2video/att_1", refusal(404, 1203, "task not found")),
)


def _submit(answer: Reply, kind: Any, code: str, after: float | None = None) -> ErrorCase:
    then = LOOKUP if issubclass(kind, InvalidInput) else ()
    note = str(answer.body["code"]) if isinstance(answer.body, dict) else ""
    return ErrorCase("submit", answer, kind, code, after, then=then, note=note)


def _poll(answer: Reply, kind: Any, code: str, note: str = "") -> ErrorCase:
    if not note and isinstance(answer.body, dict):
        note = str(answer.body["code"])
    return ErrorCase("poll", answer, kind, code, note=note)


ERRORS = (
    _submit(refusal(429, 1302, "rate", **{"Retry-After": "7"}), RateLimited, "rate_limited", 7),
    _submit(refusal(429, 1303, "parallel task over limit"), RateLimited, "concurrency_limited", 1),
    _submit(refusal(429, 1100, "account exception"), BackendFailure, "billing"),
    _submit(refusal(429, 1101, "account in arrears"), BackendFailure, "billing"),
    _submit(refusal(429, 1102, "resource pack depleted"), BackendFailure, "billing"),
    _submit(refusal(429, 1304, "ip whitelist"), BackendFailure, "ip_not_allowed"),
    _submit(Reply(429, text="slow down"), RateLimited, "rate_limited"),
    _submit(refusal(500, 5000, "internal"), RetryableError, "server_error"),
    _submit(refusal(503, 5001, "maintenance"), RetryableError, "server_error"),
    _poll(refusal(503, 5001, "maintenance"), RetryableError, "server_error"),
    _poll(refusal(504, 5002, "backlog"), RetryableError, "server_error"),
    _poll(Reply(502, text="<html>bad gateway</html>"), RetryableError, "server_error"),
    _poll(Reply(body=envelope(None, 5000, "x")), RetryableError, "server_error", note="in-200"),
    _submit(refusal(400, 1200, "invalid params"), InvalidInput, "invalid_input"),
    _submit(refusal(400, 1201, "duration invalid"), InvalidInput, "invalid_input"),
    _submit(refusal(400, 1300, "platform policy"), ContentRejected, "content_rejected"),
    _submit(refusal(400, 1301, "content safety"), ContentRejected, "content_rejected"),
    _submit(refusal(401, 1000, "auth failed"), BackendFailure, "auth_failed"),
    _submit(refusal(403, 1103, "no model permission"), BackendFailure, "no_permission"),
    _submit(refusal(404, 1203, "model not found"), BackendFailure, "not_found"),
    _poll(refusal(404, 1203, "task not found"), BackendJobLost, "not_found"),
    _poll(refusal(400, 1201, "task_id invalid"), BackendJobLost, "not_found"),
    ErrorCase("download", Reply(404, text="NoSuchKey"), BackendJobLost, "not_found"),
    ErrorCase("download", Reply(503), RetryableError, "server_error"),
    _poll(Reply(body=task("succeed")), RetryableError, "malformed", note="no-video"),
    ErrorCase(
        "submit",
        Reply(body=envelope({"task_status": "submitted"})),
        RetryableError,
        "malformed",
        outcome_unknown=True,
        note="no-task-id",
    ),
)

CASES = (
    Case(
        id="kling",
        make=make,
        declares=("kling", True, False),
        auth={"authorization": f"Bearer {sign_jwt(AK, SK, NOW)}"},
        request=request(),
        submit=Exchange("POST", f"{API}/v1/videos/text2video", Reply(body=task("submitted"))),
        sent={
            "model_name": "kling-v2-1-master",
            "prompt": "A harbour at dawn, the camera pans left",
            "negative_prompt": "blur",
            "duration": "5",
            "aspect_ratio": "16:9",
            "external_task_id": "att_1",
        },
        job_id=JOB,
        poll_after_s=5.0,
        poll_url=f"{API}/v1/videos/text2video/{TASK}",
        states=(
            _state("submitted", task("submitted"), state="queued"),
            _state("processing", task("processing"), state="running"),
            _state(  # the units are reported; with no USD price per unit, no cost
                "succeed",
                SUCCEED,
                state="succeeded",
                output_url=VIDEO_URL,
                vendor_usage={"final_unit_deduction": "1"},
            ),
            _state(
                "failed",
                task("failed", task_status_msg="Failure to pass the risk control"),
                state="failed",
                failure=Failure(
                    code="generation_failed",
                    message="Failure to pass the risk control",
                    failure_class="fallback",
                ),
            ),
        ),
        video=video(VIDEO_URL),
        cancel=None,  # Kling has no cancel endpoint
        unknown_state=Reply(body=task("paused")),
        errors=ERRORS,
    ),
)
