"""Replicate predictions as ``vendors.md`` §7 documents them (replicate-python, its docs).

Shapes: the prediction object, RFC 7807 error bodies, the throttle message that names its
wait, and ``aborted`` (a ``Cancel-After`` deadline; missing from the SDK's enum).
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
from adapters.replicate import ReplicateAdapter

from .base import Case, ErrorCase, Exchange, Raise, Reply, State, video

TOKEN = "r8_test_token"
API = "https://api.replicate.com"
PID = "gm3qorzdhgbfurvjtvhg6dckhu"
MODEL = "wan-video/wan-2.2-t2v-fast"
VIDEO_URL = "https://replicate.delivery/xezq/abc123/output.mp4"
HOOK = "https://gw.example/hooks/replicate?attempt=att_1"
TQDM = " 45%|████▌     | 9/20 [00:31<00:38,  3.50s/it]"


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": MODEL,
        "prompt": "A harbour at dawn, boats rocking",
        "duration_s": 5,
        "fps": 16,
        "width": 832,
        "height": 480,
        "aspect_ratio": "16:9",
        "resolution": "480p",
    }
    return GenerationRequest(**{**fields, **overrides})


def prediction(status: str, **fields: Any) -> dict[str, Any]:
    """A prediction object as the reference lists its fields."""
    return {
        "id": PID,
        "model": MODEL,
        "version": "c483b1f7b892065bc58ebadb6381abf557f6b1f517d2ff0febb3fb635cf49b4d",
        "status": status,
        "input": {"prompt": "A harbour at dawn, boats rocking"},
        "output": None,
        "logs": "",
        "error": None,
        "metrics": {},
        "created_at": "2026-11-02T10:00:00.000Z",
        "started_at": None,
        "completed_at": None,
        "urls": {
            "get": f"{API}/v1/predictions/{PID}",
            "cancel": f"{API}/v1/predictions/{PID}/cancel",
        },
        **fields,
    }


def problem(status: int, detail: str, title: str = "Error", **headers: str) -> Reply:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Reply(status, body=body, headers=headers)


def make(transport: httpx.AsyncBaseTransport) -> ReplicateAdapter:
    return ReplicateAdapter(TOKEN, client=httpx.AsyncClient(transport=transport, base_url=API))


def _state(id: str, body: dict[str, Any], **expect: Any) -> State:
    return State(id, Reply(body=body), JobStatus(raw_state=body["status"], **expect))


THROTTLED = "Request was throttled. Your rate limit resets in ~30s."
CREDIT = "You have insufficient credit to run this model. Go to replicate.com/account/billing."
VALIDATION = "- input.num_frames: Must be less than or equal to 121"

ERRORS = (
    ErrorCase(
        "submit",
        problem(429, THROTTLED, **{"Retry-After": "7"}),
        RateLimited,
        "rate_limited",
        7.0,
        note="header",
    ),
    ErrorCase(  # no header: the wait is read from the detail
        "submit", problem(429, THROTTLED), RateLimited, "rate_limited", 30.0, note="detail"
    ),
    ErrorCase("submit", problem(402, CREDIT), BackendFailure, "insufficient_credit"),
    ErrorCase("submit", problem(401, "Invalid token."), BackendFailure, "unauthorized"),
    ErrorCase(
        "submit",
        problem(422, VALIDATION, title="Input validation failed"),
        InvalidInput,
        "invalid_input",
    ),
    ErrorCase(
        "submit",
        problem(404, "The requested resource could not be found."),
        BackendFailure,
        "model_not_found",
    ),
    ErrorCase(  # a gateway timeout may hide a created prediction
        "submit",
        Reply(504, text="<html>Gateway Timeout</html>"),
        RetryableError,
        "http_504",
        outcome_unknown=True,
    ),
    ErrorCase(
        "submit",
        problem(503, "Service unavailable", **{"Retry-After": "3"}),
        RetryableError,
        "http_503",
        3.0,
    ),
    ErrorCase(
        "submit",
        Reply(201, body={"status": "starting"}),
        RetryableError,
        "malformed",
        outcome_unknown=True,
        note="no-id",
    ),
    ErrorCase("submit", Raise(httpx.WriteTimeout), RetryableError, "timeout", outcome_unknown=True),
    ErrorCase("poll", problem(404, "Not found."), BackendJobLost, "not_found"),
    ErrorCase("poll", problem(500, "Internal server error"), RetryableError, "http_500"),
    ErrorCase("poll", Raise(httpx.ReadTimeout), RetryableError, "timeout", outcome_unknown=True),
    ErrorCase("cancel", problem(404, "Not found."), BackendJobLost, "not_found"),
    ErrorCase("download", Reply(404, text="Not Found"), BackendFailure, "output_expired"),
    ErrorCase("download", Reply(503, text="busy"), RetryableError, "http_503"),
    ErrorCase(
        "download",
        Raise(httpx.RemoteProtocolError),
        RetryableError,
        "unreachable",
        outcome_unknown=True,
    ),
)

CASES = (
    Case(
        id="replicate",
        make=make,
        declares=("replicate", False, True),
        auth={"authorization": f"Bearer {TOKEN}"},
        request=request(seed=11, callback_url=HOOK),
        submit=Exchange(
            "POST", f"{API}/v1/models/{MODEL}/predictions", Reply(201, body=prediction("starting"))
        ),
        sent={
            "input": {
                "prompt": "A harbour at dawn, boats rocking",
                "seed": 11,
                "num_frames": 81,
                "frames_per_second": 16,
                "resolution": "480p",
                "aspect_ratio": "16:9",
            },
            "webhook": HOOK,
            "webhook_events_filter": ["start", "completed"],
        },
        job_id=PID,
        poll_after_s=5.0,
        poll_url=f"{API}/v1/predictions/{PID}",
        states=(
            _state("starting", prediction("starting"), state="queued", next_poll_s=5.0),
            _state(  # no progress bar in the logs yet
                "processing",
                prediction("processing", logs="loading weights\n"),
                state="running",
                next_poll_s=5.0,
            ),
            _state(  # progress from the last tqdm line, as the SDK reads it
                "processing-tqdm",
                prediction("processing", logs=f"loading weights\n 5%|▌ | 1/20\n{TQDM}"),
                state="running",
                progress=0.45,
                step=9,
                total_steps=20,
                next_poll_s=5.0,
            ),
            _state(
                "succeeded",
                prediction("succeeded", output=VIDEO_URL, metrics={"predict_time": 62.1}),
                state="succeeded",
                progress=1.0,
                output_url=VIDEO_URL,
                next_poll_s=0.0,
            ),
            _state(
                "failed",
                prediction("failed", error="CUDA out of memory"),
                state="failed",
                failure=Failure(
                    code="prediction_failed",
                    message="CUDA out of memory",
                    failure_class="fallback",
                ),
                next_poll_s=0.0,
            ),
            _state("canceled", prediction("canceled"), state="canceled", next_poll_s=0.0),
            _state(  # a Cancel-After deadline passed before it started
                "aborted", prediction("aborted"), state="canceled", next_poll_s=0.0
            ),
        ),
        video=video(VIDEO_URL),  # replicate.delivery is public: no token
        cancel=Exchange(
            "POST", f"{API}/v1/predictions/{PID}/cancel", Reply(body=prediction("canceled"))
        ),
        unknown_state=Reply(body=prediction("paused")),
        errors=ERRORS,
    ),
)
