"""Luma's Agents API and its legacy Dream Machine API, as their SDKs and docs show them.

Shapes: lumalabs/luma-agents-python 0.3.0 (``types/generation.py``, the create params),
docs.agents.lumalabs.ai (error handling, rate limits) and lumalabs/lumaai-python for the
Dream Machine API (``vendors.md`` §4).
"""

from __future__ import annotations

from dataclasses import replace
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
from adapters.luma import ApiChoice, LumaAdapter

from .base import Case, ErrorCase, Exchange, Raise, Reply, State, video

AGENTS = "https://agents.lumalabs.ai/v1"
DREAM = "https://api.lumalabs.ai/dream-machine/v1"
KEY = "luma_key"
GEN = "5f0c7a43-0f3e-4c5e-9b4a-2d2f4c9a8e11"
VIDEO_URL = "https://storage.cdn-luma.com/agents/gen/video.mp4?X-Amz-Signature=abc"
DREAM_VIDEO_URL = "https://storage.cdn-luma.com/dream_machine/gen/video.mp4"


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "ray-3.2",
        "prompt": "A harbour at dawn, the camera pans left",
        "duration_s": 5,
        "fps": 24,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return GenerationRequest(**{**fields, **overrides})


def generation(state: str, **extra: Any) -> dict[str, Any]:
    """An Agents API generation."""
    body = {
        "id": GEN,
        "created_at": "2026-06-09T10:00:00Z",
        "model": "ray-3.2",
        "type": "video",
        "state": state,
        "failure_code": None,
        "failure_reason": None,
        "output": None,
    }
    return {**body, **extra}


def dream(state: str, video: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Dream Machine generation."""
    body = {
        "id": GEN,
        "generation_type": "video",
        "state": state,
        "failure_reason": None,
        "created_at": "2025-10-22T10:00:00Z",
        "assets": {"video": video, "image": None, "progress_video": None},
        "model": "ray-2",
        "request": {"model": "ray-2", "prompt": "A harbour at dawn"},
    }
    return {**body, **extra}


def error(status: int, detail: Any = "Something went wrong", **headers: str) -> Reply:
    return Reply(status, body={"detail": detail}, headers=headers)


def maker(api: ApiChoice) -> Any:
    def make(transport: httpx.AsyncBaseTransport) -> LumaAdapter:
        return LumaAdapter(KEY, client=httpx.AsyncClient(transport=transport), api=api)

    return make


def _state(raw: str, body: dict[str, Any], **expect: Any) -> State:
    return State(raw, Reply(body=body), JobStatus(raw_state=raw, next_poll_s=5.0, **expect))


VALIDATION = [{"loc": ["body", "video", "duration"], "msg": "must be 5s or 10s"}]

#: Answers both APIs give alike: errors are keyed by HTTP status with a ``detail``.
ERRORS = (
    ErrorCase(
        "submit",
        error(429, "Rate limit exceeded", **{"Retry-After": "12"}),
        RateLimited,
        "rate_limited",
        12.0,
        note="rpm",
    ),
    ErrorCase(
        "submit",
        error(429, "Too many concurrent jobs"),
        RateLimited,
        "rate_limited",
        note="concurrent",
    ),
    ErrorCase("submit", error(402, "Insufficient balance"), BackendFailure, "insufficient_balance"),
    ErrorCase(  # "upstream service unavailable": the create may have landed
        "submit", error(502), RetryableError, "unavailable", outcome_unknown=True
    ),
    ErrorCase("poll", Reply(500, text="Internal error"), RetryableError, "unavailable"),
    ErrorCase("submit", error(400, "Invalid aspect_ratio"), InvalidInput, "invalid_input"),
    ErrorCase("submit", error(413, "Image exceeds 50 MB"), InvalidInput, "invalid_input"),
    ErrorCase("submit", error(422, VALIDATION), InvalidInput, "invalid_input"),
    ErrorCase("submit", error(401, "Invalid API key"), BackendFailure, "unauthorized"),
    ErrorCase("submit", error(403, "Client deactivated"), BackendFailure, "unauthorized"),
    ErrorCase("poll", error(404, "Generation not found"), BackendJobLost, "not_found"),
    ErrorCase("submit", error(404), BackendFailure, "http_404"),
    ErrorCase("poll", Reply(body={"id": GEN}), RetryableError, "malformed", note="no-state"),
    ErrorCase(
        "submit",
        Reply(201, body={"state": "queued"}),
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

AGENTS_ERRORS = (
    ErrorCase(  # "image ingestion unavailable": refused before a generation was made
        "submit", error(503, **{"Retry-After": "3"}), RetryableError, "unavailable", 3.0
    ),
    ErrorCase(  # a Dream Machine word is not an Agents state
        "poll", Reply(body=generation("dreaming")), BackendFailure, "unknown_state", note="dreaming"
    ),
    ErrorCase(
        "poll",
        Reply(body=generation("completed", output=[])),
        RetryableError,
        "malformed",
        note="no-output",
    ),
)

DREAM_ERRORS = (
    ErrorCase(  # Dream Machine documents no 503: the create may have landed
        "submit",
        error(503, **{"Retry-After": "3"}),
        RetryableError,
        "unavailable",
        3.0,
        outcome_unknown=True,
    ),
    ErrorCase("poll", Reply(body=dream("completed")), RetryableError, "malformed", note="no-video"),
)

AGENTS_CASE = Case(
    id="luma-agents",
    make=maker("agents"),
    declares=("luma", False, False),
    auth={"authorization": f"Bearer {KEY}"},
    request=request(seed=7, negative_prompt="blur", audio=True, callback_url="https://gw/hook"),
    submit=Exchange("POST", f"{AGENTS}/generations", Reply(201, body=generation("queued"))),
    sent={  # no seed, negative prompt, audio or webhook in this API
        "type": "video",
        "model": "ray-3.2",
        "prompt": "A harbour at dawn, the camera pans left",
        "aspect_ratio": "16:9",
        "video": {"duration": "5s", "resolution": "720p"},
    },
    job_id=GEN,
    poll_after_s=5.0,
    poll_url=f"{AGENTS}/generations/{GEN}",
    states=(
        _state("queued", generation("queued"), state="queued"),
        _state("processing", generation("processing"), state="running"),
        _state(
            "completed",
            generation("completed", output=[{"type": "video", "url": VIDEO_URL}]),
            state="succeeded",
            progress=1.0,
            output_url=VIDEO_URL,
        ),
        _state(
            "failed",
            generation("failed", failure_code="content_moderated", failure_reason="Moderated"),
            state="failed",
            failure=Failure(code="content_moderated", message="Moderated", failure_class="fatal"),
        ),
    ),
    video=video(VIDEO_URL),
    cancel=None,  # the Agents API has no cancel
    unknown_state=Reply(body=generation("paused")),
    errors=ERRORS + AGENTS_ERRORS,
)

DREAM_CASE = Case(
    id="luma-dream-machine",
    make=maker("dream-machine"),
    declares=("luma", False, False),
    auth={"authorization": f"Bearer {KEY}"},
    request=request(
        model="ray-2",
        duration_s=9,
        resolution="4k",
        aspect_ratio="9:21",
        image="https://example.com/first.png",
        last_frame="https://example.com/last.png",
        callback_url="https://gateway.example/hooks/luma",
    ),
    submit=Exchange("POST", f"{DREAM}/generations/video", Reply(201, body=dream("queued"))),
    sent={
        "model": "ray-2",
        "prompt": "A harbour at dawn, the camera pans left",
        "aspect_ratio": "9:21",
        "duration": "9s",
        "resolution": "4k",
        "keyframes": {
            "frame0": {"type": "image", "url": "https://example.com/first.png"},
            "frame1": {"type": "image", "url": "https://example.com/last.png"},
        },
        "callback_url": "https://gateway.example/hooks/luma",
    },
    job_id=GEN,
    poll_after_s=5.0,
    poll_url=f"{DREAM}/generations/{GEN}",
    states=(
        _state("queued", dream("queued"), state="queued"),
        _state("dreaming", dream("dreaming"), state="running"),
        _state(
            "completed",
            dream("completed", DREAM_VIDEO_URL),
            state="succeeded",
            progress=1.0,
            output_url=DREAM_VIDEO_URL,
        ),
        _state(
            "failed",
            dream("failed", failure_reason="400: prompt not allowed"),
            state="failed",
            failure=Failure(
                code="generation_failed",
                message="400: prompt not allowed",
                failure_class="fallback",
            ),
        ),
    ),
    video=video(DREAM_VIDEO_URL),
    cancel=None,  # DELETE deletes a generation; it is not documented as a cancel
    unknown_state=Reply(body=dream("processing")),  # an Agents word
    errors=ERRORS + DREAM_ERRORS,
)

#: ``api="auto"`` (the default): one adapter, each model to its own API. An Agents job
#: id carries ``agents:`` so that a poll knows which API to ask; a bare one is Dream
#: Machine's (every id was, under the old default), so jobs in flight survive an upgrade.
AUTO_AGENTS_CASE = replace(
    AGENTS_CASE, id="luma-auto-agents", make=maker("auto"), job_id=f"agents:{GEN}"
)
AUTO_DREAM_CASE = replace(DREAM_CASE, id="luma-auto-dream-machine", make=maker("auto"))

CASES = (AGENTS_CASE, DREAM_CASE, AUTO_AGENTS_CASE, AUTO_DREAM_CASE)
