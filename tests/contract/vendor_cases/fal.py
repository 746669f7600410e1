"""fal's queue API as ``vendors.md`` §6 and the 2026-11 addendum §5 document it.

Shapes: the submit answer with its URLs (which drop the endpoint's subpath), statuses with
HTTP 202 while queued or running and 200 when complete, the result ``{"video": {...}}``
with ``x-fal-billable-units``, and fal's two error shapes (``detail`` list, ``detail`` +
``error_type``).
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
from adapters.fal import FalAdapter

from .base import Case, ErrorCase, Exchange, Raise, Reply, State, video

KEY = "fal-key-123"
RID = "764cabcf-b745-4b3e-ae38-1200304cf45b"
QUEUE = "https://queue.fal.run"
PRICING = "https://api.fal.ai/v1/models/pricing"
VIDEO_URL = "https://v3.fal.media/files/penguin/out.mp4"
FIRST = "https://img.example/first.png"

KLING = "fal-ai/kling-video/v2.1/master/image-to-video"
KLING_JOB = f"{KLING}#{RID}"
KLING_BASE = f"{QUEUE}/fal-ai/kling-video/requests/{RID}"  # the subpath is dropped


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "fal-ai/wan/v2.2-a14b",
        "prompt": "A harbour at dawn, boats rocking",
        "duration_s": 5,
        "fps": 16,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return GenerationRequest(**{**fields, **overrides})


def queued(app: str, rid: str = RID) -> dict[str, Any]:
    """The submit answer."""
    base = f"{QUEUE}/{app}/requests/{rid}"
    return {
        "request_id": rid,
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
        "status": "IN_QUEUE",
        "queue_position": 0,
    }


def result(billable: str | None = "5") -> Reply:
    body = {
        "video": {
            "url": VIDEO_URL,
            "content_type": "video/mp4",
            "file_name": "out.mp4",
            "file_size": 1_234_567,
        },
        "seed": 42,
    }
    headers = {"x-fal-billable-units": billable} if billable is not None else {}
    return Reply(200, body=body, headers=headers)


def model_error(kind: str, field: str, msg: str) -> dict[str, Any]:
    return {"detail": [{"loc": ["body", field], "msg": msg, "type": kind}]}


def make(transport: httpx.AsyncBaseTransport) -> FalAdapter:
    return FalAdapter(KEY, client=httpx.AsyncClient(transport=transport, base_url=QUEUE))


PRICES = {"prices": [{"endpoint_id": KLING, "unit_price": 0.28, "unit": "video_second"}]}
FAILED_STATUS = {
    "status": "COMPLETED",
    "logs": [],
    "metrics": {},
    "error": "Request failed",
    "error_type": "runner_disconnected",
}
FLAGGED = "The content was flagged by the safety checker"

STATES = (
    State(
        "IN_QUEUE",
        Reply(202, body={"status": "IN_QUEUE", "queue_position": 3}),
        JobStatus(state="queued", queue_position=3, next_poll_s=5.0, raw_state="IN_QUEUE"),
    ),
    State(
        "IN_PROGRESS",
        Reply(202, body={"status": "IN_PROGRESS", "logs": []}),
        JobStatus(state="running", next_poll_s=5.0, raw_state="IN_PROGRESS"),
    ),
    State(  # the result carries the URL and billable units; the unit price is looked up
        "COMPLETED",
        Reply(200, body={"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 80.2}}),
        JobStatus(
            state="succeeded",
            progress=1.0,
            next_poll_s=5.0,
            output_url=VIDEO_URL,
            cost_usd_micros=1_400_000,  # 5 billable units x $0.28
            vendor_usage={"billable_units": "5"},
            raw_state="COMPLETED",
        ),
        then=(
            Exchange("GET", KLING_BASE, result(billable="5")),
            Exchange(
                "GET",
                str(httpx.URL(PRICING, params={"endpoint_id": KLING})),
                Reply(body=PRICES),
            ),
        ),
    ),
    State(  # fal has no failed state: COMPLETED with an error, the result says why
        "COMPLETED-error",
        Reply(200, body=FAILED_STATUS),
        JobStatus(
            state="failed",
            next_poll_s=0.0,
            failure=Failure(
                code="content_policy_violation",
                message=f"fal refused the content: prompt: {FLAGGED}",
                failure_class="fatal",
            ),
            raw_state="COMPLETED",
        ),
        then=(
            Exchange(
                "GET",
                KLING_BASE,
                Reply(422, body=model_error("content_policy_violation", "prompt", FLAGGED)),
            ),
        ),
    ),
)

NGINX = "<html><center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center></html>"
LOCKED = {"detail": "User is locked. Reason: Exhausted balance. Top up your balance."}
RUNNER = {"detail": "Runner disconnected", "error_type": "runner_disconnected"}

ERRORS = (
    ErrorCase(
        "submit",
        Reply(429, body={"detail": "Too many requests"}, headers={"Retry-After": "7"}),
        RateLimited,
        "rate_limited",
        7.0,
    ),
    ErrorCase("submit", Reply(403, body=LOCKED), BackendFailure, "http_403"),  # billing
    ErrorCase("submit", Reply(401, body={"detail": "Invalid Key"}), BackendFailure, "http_401"),
    ErrorCase(
        "submit",
        Reply(422, body=model_error("less_than_equal", "num_frames", "must be <= 161")),
        InvalidInput,
        "less_than_equal",
    ),
    ErrorCase("submit", Reply(400, body={"detail": "Invalid JSON"}), InvalidInput, "http_400"),
    ErrorCase(
        "submit",
        Reply(422, body=model_error("content_policy_violation", "prompt", "flagged")),
        ContentRejected,
        "content_policy_violation",
    ),
    ErrorCase(
        "submit",
        Reply(404, body={"detail": "Application 'nope' not found"}),
        BackendFailure,
        "not_found",
    ),
    ErrorCase(  # an ingress timeout may hide an accepted request
        "submit", Reply(504, text=NGINX), RetryableError, "http_504", outcome_unknown=True
    ),
    ErrorCase(
        "submit",
        Reply(500, body={"detail": "Internal error"}),
        RetryableError,
        "http_500",
        outcome_unknown=True,
    ),
    ErrorCase(
        "submit",
        Reply(body={"status": "IN_QUEUE"}),
        RetryableError,
        "malformed",
        outcome_unknown=True,
        note="no-request-id",
    ),
    ErrorCase(
        "poll", Reply(404, body={"detail": "Request not found"}), BackendJobLost, "not_found"
    ),
    ErrorCase(
        "poll",
        Reply(503, body=RUNNER, headers={"Retry-After": "2"}),
        RetryableError,
        "runner_disconnected",
        2.0,
    ),
    ErrorCase("poll", Reply(408, body={"detail": "Request timeout"}), RetryableError, "http_408"),
    ErrorCase("poll", Raise(httpx.ReadError), RetryableError, "unreachable", outcome_unknown=True),
    ErrorCase(
        "cancel", Reply(404, body={"detail": "Request not found"}), BackendJobLost, "not_found"
    ),
    ErrorCase("download", Reply(404, text="Not Found"), BackendFailure, "not_found"),
    ErrorCase("download", Reply(502, text="bad gateway"), RetryableError, "http_502"),
    ErrorCase(
        "download", Raise(httpx.ReadError), RetryableError, "unreachable", outcome_unknown=True
    ),
)

CASES = (
    Case(
        id="fal",
        make=make,
        declares=("fal", False, True),
        auth={"authorization": f"Key {KEY}"},
        request=request(model="fal-ai/kling-video/v2.1/master", image=FIRST),
        submit=Exchange("POST", f"{QUEUE}/{KLING}", Reply(body=queued("fal-ai/kling-video"))),
        sent={"prompt": "A harbour at dawn, boats rocking", "duration": "5", "image_url": FIRST},
        job_id=KLING_JOB,
        poll_after_s=5.0,
        poll_url=f"{KLING_BASE}/status",
        states=STATES,
        video=video(VIDEO_URL),  # fal's CDN is public: no key
        cancel=Exchange(
            "PUT", f"{KLING_BASE}/cancel", Reply(202, body={"status": "CANCELLATION_REQUESTED"})
        ),
        unknown_state=Reply(body={"status": "PAUSED"}),
        errors=ERRORS,
    ),
)
