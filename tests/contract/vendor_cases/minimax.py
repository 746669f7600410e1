"""MiniMax Hailuo video API v1 as ``vendors.md`` §8 documents it (MiniMax-AI/MiniMax-MCP).

Shapes: create, query, files/retrieve, ``base_resp`` errors inside HTTP 200 answers and
the error-code table.
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
from adapters.minimax import MiniMaxAdapter

from .base import Case, ErrorCase, Exchange, Reply, State, video

API = "https://api.minimax.io"
KEY = "mm_key"
TASK = "106916112212032"
FILE_ID = "205258526306433"
VIDEO_URL = "https://public-cdn-video-data-algeng.oss-cn-wulanchabu.aliyuncs.com/out.mp4?sig=x"
OK = {"status_code": 0, "status_msg": "success"}


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "MiniMax-Hailuo-2.3",
        "prompt": "A harbour at dawn [Pan left]",
        "negative_prompt": "blur",
        "duration_s": 6,
        "fps": 24,
        "width": 1920,
        "height": 1080,
        "aspect_ratio": "16:9",
        "resolution": "1080p",
        "seed": 7,
    }
    return GenerationRequest(**{**fields, **overrides})


def query(status: str, file_id: str = "", base_resp: dict[str, Any] = OK) -> dict[str, Any]:
    done = status == "Success"
    return {
        "task_id": TASK,
        "status": status,
        "file_id": file_id,
        "video_width": 1920 if done else 0,
        "video_height": 1080 if done else 0,
        "base_resp": base_resp,
    }


RETRIEVED = {
    "file": {
        "file_id": int(FILE_ID),
        "bytes": 5896337,
        "created_at": 1700469398,
        "filename": "output_aigc.mp4",
        "purpose": "video_generation",
        "download_url": VIDEO_URL,
    },
    "base_resp": OK,
}


def base_error(code: int, message: str = "it went wrong", **headers: str) -> Reply:
    """An error MiniMax answers with HTTP 200."""
    body = {"task_id": "", "base_resp": {"status_code": code, "status_msg": message}}
    return Reply(200, body=body, headers={"Trace-Id": "trace-1", **headers})


def make(transport: httpx.AsyncBaseTransport) -> MiniMaxAdapter:
    return MiniMaxAdapter(KEY, client=httpx.AsyncClient(transport=transport, base_url=API))


def _state(raw: str, body: dict[str, Any], **expect: Any) -> State:
    return State(raw, Reply(body=body), JobStatus(raw_state=raw, next_poll_s=5.0, **expect))


def _in_200(op: Any, code: int, message: str, kind: Any, ours: str, **kw: Any) -> ErrorCase:
    headers = kw.pop("headers", {})
    return ErrorCase(op, base_error(code, message, **headers), kind, ours, note=str(code), **kw)


ERRORS = (
    # errors in HTTP 200 answers
    _in_200(
        "submit",
        1002,
        "rate limit",
        RateLimited,
        "rate_limited",
        retry_after=7,
        headers={"Retry-After": "7"},
    ),
    _in_200("submit", 1000, "unknown", RetryableError, "server_error", outcome_unknown=True),
    _in_200("submit", 1001, "timeout", RetryableError, "timeout", outcome_unknown=True),
    _in_200("poll", 1001, "timeout", RetryableError, "timeout"),
    _in_200("submit", 1004, "auth failed", BackendFailure, "auth_failed"),
    _in_200("submit", 1008, "insufficient balance", BackendFailure, "billing"),
    _in_200("submit", 1026, "input sensitive", ContentRejected, "content_rejected"),
    _in_200("submit", 1027, "output sensitive", ContentRejected, "content_rejected"),
    _in_200("submit", 2013, "invalid params", InvalidInput, "invalid_input"),
    _in_200("submit", 2038, "real-name verification", BackendFailure, "account_unverified"),
    _in_200("submit", 1039, "something new", BackendFailure, "vendor_error"),
    _in_200("poll", 1002, "rate limit", RateLimited, "rate_limited"),
    _in_200("poll", 2013, "invalid task_id", BackendJobLost, "not_found"),
    # errors in the HTTP status
    ErrorCase(
        "submit",
        Reply(429, text="slow down", headers={"Retry-After": "3"}),
        RateLimited,
        "rate_limited",
        3,
    ),
    ErrorCase(
        "submit", Reply(500, text="oops"), RetryableError, "server_error", outcome_unknown=True
    ),
    ErrorCase("poll", Reply(503), RetryableError, "server_error"),
    ErrorCase("submit", Reply(400, text="bad request"), InvalidInput, "invalid_input"),
    ErrorCase("submit", Reply(422, text="unprocessable"), InvalidInput, "invalid_input"),
    ErrorCase("submit", Reply(401, text="unauthorized"), BackendFailure, "auth_failed"),
    ErrorCase("poll", Reply(404, text="not found"), BackendJobLost, "not_found"),
    ErrorCase("download", Reply(403, text="AccessDenied"), BackendFailure, "auth_failed"),
    ErrorCase("download", Reply(404, text="NoSuchKey"), BackendJobLost, "not_found"),
    # bodies that make no sense
    ErrorCase("poll", Reply(body=query("Success")), RetryableError, "malformed", note="no-file-id"),
    ErrorCase(
        "submit",
        Reply(body={"base_resp": OK}),
        RetryableError,
        "malformed",
        outcome_unknown=True,
        note="no-task-id",
    ),
)

CASES = (
    Case(
        id="minimax",
        make=make,
        declares=("minimax", False, False),
        auth={"authorization": f"Bearer {KEY}"},
        request=request(),
        submit=Exchange(
            "POST", f"{API}/v1/video_generation", Reply(body={"task_id": TASK, "base_resp": OK})
        ),
        sent={  # no negative prompt, seed, audio or aspect ratio in v1
            "model": "MiniMax-Hailuo-2.3",
            "prompt": "A harbour at dawn [Pan left]",
            "duration": 6,
            "resolution": "1080P",
        },
        job_id=TASK,
        poll_after_s=5.0,
        poll_url=f"{API}/v1/query/video_generation?task_id={TASK}",
        states=(
            _state("Preparing", query("Preparing"), state="queued"),
            _state("Queueing", query("Queueing"), state="queued"),
            _state("Processing", query("Processing"), state="running"),
            State(  # the poll that sees success retrieves the file for its URL
                "Success",
                Reply(body=query("Success", FILE_ID)),
                JobStatus(
                    state="succeeded", raw_state="Success", next_poll_s=5.0, output_url=VIDEO_URL
                ),
                then=(
                    Exchange(
                        "GET", f"{API}/v1/files/retrieve?file_id={FILE_ID}", Reply(body=RETRIEVED)
                    ),
                ),
            ),
            _state(
                "Fail",
                query("Fail", base_resp={"status_code": 1000, "status_msg": "unknown error"}),
                state="failed",
                failure=Failure(
                    code="generation_failed", message="unknown error", failure_class="fallback"
                ),
            ),
        ),
        video=video(VIDEO_URL),
        cancel=None,  # v1 has no cancel
        unknown_state=Reply(body=query("Paused")),
        errors=ERRORS,
    ),
)
