"""Google's Gemini API, both wires, as ``vendors.md`` §2 and the 2026-11 addendum §1 show it.

Veo: ``predictLongRunning`` → an operation ``{"name", "done", "response" | "error"}``; done
with no playable sample is a safety refusal; there is no cancel. Omni: the Interactions API
with ``background: true`` → ``{"id", "status", "steps"}``. Errors are
``{"error": {"code", "message", "status"}}`` with google.rpc details.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.base import (
    BackendFailure,
    BackendJobLost,
    Failure,
    GenerationRequest,
    InvalidInput,
    JobStatus,
    RateLimited,
    RetryableError,
)
from adapters.google import GoogleAdapter

from .base import Case, ErrorCase, Exchange, Reply, State, video

BASE = "https://generativelanguage.googleapis.com"
KEY = "test-key"
VEO = "veo-3.1-generate-preview"
OMNI = "gemini-omni-1.1-flash"
OP = f"models/{VEO}/operations/op123"
IX = "v1_abc123"
FILE_URI = f"{BASE}/v1beta/files/vid1:download?alt=media"
SAFETY = "Your prompt could not be generated because it violates the usage guidelines."


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": VEO,
        "prompt": "A lighthouse at dawn, slow push-in",
        "duration_s": 8,
        "fps": 24,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return GenerationRequest(**{**fields, **overrides})


def error(status: int, name: str, message: str = "nope", **extra: Any) -> Reply:
    body = {"error": {"code": status, "message": message, "status": name, **extra}}
    return Reply(status, body=body)


def veo_done(*samples: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": OP,
        "done": True,
        "response": {
            "generateVideoResponse": {"generatedSamples": list(samples), **extra},
        },
    }


def interaction(status: str, *steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": IX,
        "status": status,
        "model": OMNI,
        "created": "2026-11-20T10:00:00Z",
        "updated": "2026-11-20T10:01:00Z",
        "steps": list(steps),
        **extra,
    }


def video_step(**block: Any) -> dict[str, Any]:
    return {
        "type": "model_output",
        "content": [{"type": "video", "mime_type": "video/mp4", **block}],
    }


def make(transport: httpx.AsyncBaseTransport) -> GoogleAdapter:
    return GoogleAdapter(KEY, client=httpx.AsyncClient(transport=transport, base_url=BASE))


def _failed(code: str, message: str, klass: Any, raw: str) -> JobStatus:
    failure = Failure(code=code, message=message, failure_class=klass)
    return JobStatus(state="failed", failure=failure, raw_state=raw, next_poll_s=0.0)


PER_DAY_METRIC = "generativelanguage.googleapis.com/generate_requests_per_model_per_day"
DAILY = {
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": PER_DAY_METRIC,
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
                }
            ],
        }
    ]
}
BILLING = {
    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "BILLING_DISABLED"}]
}
RETRY_INFO = {
    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]
}
RESOURCE_EXHAUSTED = error(429, "RESOURCE_EXHAUSTED").body

#: The same Gemini API errors on both wires.
ERRORS = (
    ErrorCase("submit", error(429, "RESOURCE_EXHAUSTED"), RateLimited, "resource_exhausted"),
    ErrorCase(
        "submit",
        Reply(429, body=RESOURCE_EXHAUSTED, headers={"retry-after": "12"}),
        RateLimited,
        "resource_exhausted",
        12.0,
        note="header",
    ),
    ErrorCase(
        "submit",
        error(429, "RESOURCE_EXHAUSTED", **RETRY_INFO),
        RateLimited,
        "resource_exhausted",
        37.0,
        note="retry-info",
    ),
    ErrorCase(  # a daily quota: hours away, another vendor now
        "submit",
        error(429, "RESOURCE_EXHAUSTED", **DAILY),
        BackendFailure,
        "quota_exhausted",
        note="per-day",
    ),
    ErrorCase(
        "submit",
        error(429, "RESOURCE_EXHAUSTED", **BILLING),
        BackendFailure,
        "quota_exhausted",
        note="billing",
    ),
    ErrorCase(
        "submit",
        error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
        BackendFailure,
        "failed_precondition",
    ),
    ErrorCase(  # no 5xx on a create says "not accepted": the job may exist
        "submit", error(500, "INTERNAL"), RetryableError, "internal", outcome_unknown=True
    ),
    ErrorCase(
        "submit", error(503, "UNAVAILABLE"), RetryableError, "unavailable", outcome_unknown=True
    ),
    ErrorCase("poll", error(503, "UNAVAILABLE"), RetryableError, "unavailable"),
    ErrorCase("submit", error(400, "INVALID_ARGUMENT"), InvalidInput, "invalid_argument"),
    ErrorCase("submit", Reply(422, body={"detail": "unprocessable"}), InvalidInput, "http_422"),
    ErrorCase(
        "submit",
        error(401, "UNAUTHENTICATED", "API key not valid"),
        BackendFailure,
        "unauthenticated",
    ),
    ErrorCase("submit", error(403, "PERMISSION_DENIED"), BackendFailure, "permission_denied"),
    ErrorCase("submit", error(404, "NOT_FOUND", "model not found"), BackendFailure, "not_found"),
    ErrorCase("poll", error(404, "NOT_FOUND"), BackendJobLost, "not_found"),
    ErrorCase(
        "download", error(404, "NOT_FOUND", "File vid1 not found"), BackendJobLost, "not_found"
    ),
    ErrorCase(
        "submit",
        Reply(body={"unexpected": True}),
        RetryableError,
        "malformed",
        outcome_unknown=True,
        note="no-job-id",
    ),
    ErrorCase(
        "submit",
        Reply(body={"name": "../../etc", "id": "a/b"}),
        RetryableError,
        "malformed",
        outcome_unknown=True,
        note="unusable-job-id",
    ),
)

VEO_CASE = Case(
    id="google-veo",
    make=make,
    declares=("google", False, True),  # Omni cancels; Veo cannot (below)
    auth={"x-goog-api-key": KEY},
    request=request(negative_prompt="text overlays", seed=7, audio=True),
    submit=Exchange(
        "POST", f"{BASE}/v1beta/models/{VEO}:predictLongRunning", Reply(body={"name": OP})
    ),
    sent={  # no seed / generateAudio / fps: the Gemini API rejects them
        "instances": [{"prompt": "A lighthouse at dawn, slow push-in"}],
        "parameters": {
            "aspectRatio": "16:9",
            "durationSeconds": 8,
            "resolution": "720p",
            "sampleCount": 1,
            "negativePrompt": "text overlays",
        },
    },
    job_id=OP,
    poll_after_s=10.0,
    poll_url=f"{BASE}/v1beta/{OP}",
    states=(
        State(  # ``done`` is omitted while false
            "running",
            Reply(body={"name": OP}),
            JobStatus(state="running", raw_state="running", next_poll_s=10.0),
        ),
        State(
            "done",
            Reply(body=veo_done({"video": {"uri": FILE_URI}})),
            JobStatus(
                state="succeeded",
                progress=1.0,
                output_url=FILE_URI,
                raw_state="done",
                next_poll_s=0.0,
            ),
        ),
        State(
            "done-error",
            Reply(body={"name": OP, "done": True, "error": {"code": 13, "message": "boom"}}),
            _failed("internal", "boom", "retryable", "done:error:INTERNAL"),
        ),
        State(  # every sample filtered by safety: a content refusal, never retried
            "done-filtered",
            Reply(body=veo_done(raiMediaFilteredCount=1, raiMediaFilteredReasons=[SAFETY])),
            _failed("content_rejected", SAFETY, "fatal", "done:filtered"),
        ),
        State(
            "done-cancelled",
            Reply(body={"name": OP, "done": True, "error": {"code": 1, "message": "cancelled"}}),
            JobStatus(state="canceled", raw_state="done:error:CANCELLED", next_poll_s=0.0),
        ),
    ),
    video=video(FILE_URI, keyed=True),  # the Files API wants the key
    cancel=None,  # the Gemini API cannot cancel a Veo operation
    unknown_state=Reply(body={"name": OP, "done": True, "response": {"@type": "SomethingElse"}}),
    errors=ERRORS,
)


def _ended(raw: str) -> State:
    return State(
        raw,
        Reply(body=interaction(raw)),
        _failed(raw, f"Omni interaction ended {raw}", "fallback", raw),
    )


OMNI_CASE = Case(
    id="google-omni",
    make=make,
    declares=("google", False, True),
    auth={"x-goog-api-key": KEY},
    request=request(model=OMNI, duration_s=6, seed=11, audio=False),
    submit=Exchange(
        "POST", f"{BASE}/v1beta/interactions", Reply(body={"id": IX, "status": "in_progress"})
    ),
    sent={
        "model": OMNI,
        "input": "A lighthouse at dawn, slow push-in",
        "response_format": {
            "type": "video",
            "aspect_ratio": "16:9",
            "duration": "6s",
            "resolution": "720p",
        },
        "generation_config": {"video_config": {"task": "text_to_video"}, "seed": 11},
        "background": True,
    },
    job_id=IX,
    poll_after_s=5.0,
    poll_url=f"{BASE}/v1beta/interactions/{IX}",
    states=(
        State(
            "queued",
            Reply(body=interaction("queued")),
            JobStatus(state="queued", raw_state="queued", next_poll_s=5.0),
        ),
        State(
            "in_progress",
            Reply(body=interaction("in_progress")),
            JobStatus(state="running", raw_state="in_progress", next_poll_s=5.0),
        ),
        State(  # the video is the last model_output step's video block
            "completed",
            Reply(
                body=interaction(
                    "completed", {"type": "thought", "signature": "x"}, video_step(uri=FILE_URI)
                )
            ),
            JobStatus(
                state="succeeded",
                progress=1.0,
                output_url=FILE_URI,
                raw_state="completed",
                next_poll_s=0.0,
            ),
        ),
        State(
            "failed",
            Reply(
                body=interaction(
                    "failed",
                    errors=[{"code": "https://ai.google.dev/errors/internal", "message": "boom"}],
                )
            ),
            _failed("internal", "boom", "retryable", "failed"),
        ),
        State(
            "cancelled",
            Reply(body=interaction("cancelled")),
            JobStatus(state="canceled", raw_state="cancelled", next_poll_s=0.0),
        ),
        _ended("incomplete"),
        _ended("budget_exceeded"),
        _ended("requires_action"),  # no tools are declared: nothing would move it on
    ),
    video=video(FILE_URI, keyed=True),
    cancel=Exchange(
        "POST", f"{BASE}/v1beta/interactions/{IX}/cancel", Reply(body=interaction("cancelled"))
    ),
    unknown_state=Reply(body=interaction("paused")),
    errors=ERRORS,
)

CASES = (VEO_CASE, OMNI_CASE)
