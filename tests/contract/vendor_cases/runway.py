"""Runway as runwayml/sdk-python 5.13.0 and docs.dev.runwayml.com document it.

Shapes: ``types/task_retrieve_response.py``, the create params and response; errors and
task failures from the docs (``vendors.md`` §3).
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
from adapters.runway import RunwayAdapter

from .base import Case, ErrorCase, Exchange, Raise, Reply, State, video

API = "https://api.dev.runwayml.com"
KEY = "rw_key"
TASK = "17f20503-6c24-4c16-946b-35dbbce2af2f"
CREATED = "2024-06-27T19:49:32.334Z"
VIDEO_URL = "https://dnznrvs05pmza.cloudfront.net/video.mp4?_jwt=abc"


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "gen4.5",
        "prompt": "A harbour at dawn, the camera pans left",
        "duration_s": 5,
        "fps": 24,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return GenerationRequest(**{**fields, **overrides})


def task(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": TASK, "createdAt": CREATED, "status": status, **extra}


def error(status: int, message: str = "Something went wrong", **headers: str) -> Reply:
    return Reply(status, body={"error": message}, headers=headers)


def make(transport: httpx.AsyncBaseTransport) -> RunwayAdapter:
    return RunwayAdapter(KEY, client=httpx.AsyncClient(transport=transport))


def _state(raw: str, body: dict[str, Any], **expect: Any) -> State:
    return State(raw, Reply(body=body), JobStatus(raw_state=raw, next_poll_s=5.0, **expect))


STATES = (
    _state("PENDING", task("PENDING"), state="queued"),
    State(
        "THROTTLED",  # over the org's concurrency limit: polled less often
        Reply(body=task("THROTTLED")),
        JobStatus(state="queued", raw_state="THROTTLED", next_poll_s=10.0),
    ),
    _state("RUNNING", task("RUNNING", progress=0.42), state="running", progress=0.42),
    _state(
        "SUCCEEDED",
        task("SUCCEEDED", output=[VIDEO_URL]),
        state="succeeded",
        progress=1.0,
        output_url=VIDEO_URL,
    ),
    _state(
        "FAILED",
        task("FAILED", failure="Prompt rejected by moderation", failureCode="SAFETY.INPUT.TEXT"),
        state="failed",
        failure=Failure(
            code="SAFETY.INPUT.TEXT",
            message="Prompt rejected by moderation",
            failure_class="fatal",
        ),
    ),
    _state("CANCELLED", task("CANCELLED"), state="canceled"),
)

ERRORS = (
    ErrorCase("submit", error(429, **{"Retry-After": "7"}), RateLimited, "rate_limited", 7.0),
    ErrorCase("submit", error(429, "Daily task limit reached"), BackendFailure, "quota_exceeded"),
    ErrorCase("poll", error(429), RateLimited, "rate_limited"),
    ErrorCase("submit", error(500), RetryableError, "unavailable", outcome_unknown=True),
    ErrorCase(  # "not able to satisfy the request": the task may exist
        "submit", error(504), RetryableError, "unavailable", outcome_unknown=True
    ),
    ErrorCase("submit", error(502), RetryableError, "unavailable"),  # load shedding
    ErrorCase("submit", error(503, **{"Retry-After": "2"}), RetryableError, "unavailable", 2.0),
    ErrorCase("poll", Reply(504, text="<html>timeout</html>"), RetryableError, "unavailable"),
    ErrorCase("submit", error(400, "Invalid ratio"), InvalidInput, "invalid_input"),
    ErrorCase("submit", error(422), InvalidInput, "invalid_input"),
    ErrorCase("submit", error(401, "Invalid API key"), BackendFailure, "unauthorized"),
    ErrorCase("poll", error(403), BackendFailure, "unauthorized"),
    ErrorCase("submit", error(402), BackendFailure, "insufficient_credits"),
    ErrorCase("submit", error(404), BackendFailure, "http_404"),
    ErrorCase("submit", error(405), BackendFailure, "http_405"),
    ErrorCase("poll", error(404, "Task not found"), BackendJobLost, "task_not_found"),
    ErrorCase("cancel", error(404), BackendJobLost, "task_not_found"),
    ErrorCase("poll", Reply(body={"id": TASK}), RetryableError, "malformed", note="no-status"),
    ErrorCase(
        "poll",
        Reply(body=task("SUCCEEDED", output=[])),
        RetryableError,
        "malformed",
        note="no-output",
    ),
    ErrorCase(
        "submit",
        Reply(body={"task": TASK}),
        RetryableError,
        "malformed",
        outcome_unknown=True,
        note="no-id",
    ),
    ErrorCase("poll", Raise(httpx.ReadTimeout), RetryableError, "timeout", outcome_unknown=True),
    ErrorCase(
        "download", Raise(httpx.ReadError), RetryableError, "unreachable", outcome_unknown=True
    ),
    ErrorCase("download", Reply(503), RetryableError, "unavailable"),
)

CASES = (
    Case(
        id="runway",
        make=make,
        declares=("runway", False, True),
        auth={"authorization": f"Bearer {KEY}", "x-runway-version": "2024-11-06"},
        request=request(seed=42, negative_prompt="blur", audio=True),
        submit=Exchange("POST", f"{API}/v1/text_to_video", Reply(body={"id": TASK})),
        sent={  # gen4.5 takes no negativePrompt and no audio switch
            "model": "gen4.5",
            "promptText": "A harbour at dawn, the camera pans left",
            "ratio": "1280:720",
            "duration": 5,
            "seed": 42,
        },
        job_id=TASK,
        poll_after_s=5.0,
        poll_url=f"{API}/v1/tasks/{TASK}",
        states=STATES,
        video=video(VIDEO_URL),
        cancel=Exchange("DELETE", f"{API}/v1/tasks/{TASK}", Reply(204)),
        unknown_state=Reply(body=task("PAUSED")),
        errors=ERRORS,
    ),
)
