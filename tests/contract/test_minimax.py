"""MiniMaxAdapter against scripted answers shaped as MiniMax documents them.

Shapes: ``vendors.md`` §8 (MiniMax-AI/MiniMax-MCP's client and server: create, query,
files/retrieve, ``base_resp`` in HTTP 200 answers, the error-code table).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.base import (
    Adapter,
    AdapterError,
    BackendFailure,
    BackendJobLost,
    ContentRejected,
    GenerationRequest,
    InvalidInput,
    JobStatus,
    RateLimited,
    RetryableError,
)
from adapters.minimax import MiniMaxAdapter, parse_status, to_payload

API = "https://api.minimax.io"
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


def base_error(code: int, message: str = "it went wrong", **headers: str) -> httpx.Response:
    body = {"task_id": "", "base_resp": {"status_code": code, "status_msg": message}}
    return httpx.Response(200, json=body, headers={"Trace-Id": "trace-1", **headers})


class Vendor:
    """Answers requests in order and records them."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.seen.append(req)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, index: int = 0) -> Any:
        return json.loads(self.seen[index].content)


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[MiniMaxAdapter] = []

    def build(vendor: Vendor, **kw: Any) -> MiniMaxAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(vendor), base_url=API)
        made.append(MiniMaxAdapter("mm_key", client=client, **kw))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


async def read(adapter: MiniMaxAdapter, job: str, status: JobStatus) -> bytes:
    return b"".join([chunk async for chunk in adapter.download(job, status)])


# --- the happy path -----------------------------------------------------------------------


async def test_submit_poll_retrieve_download(make: Any) -> None:
    vendor = Vendor(
        httpx.Response(200, json={"task_id": TASK, "base_resp": OK}),
        httpx.Response(200, json=query("Preparing")),
        httpx.Response(200, json=query("Queueing")),
        httpx.Response(200, json=query("Processing")),
        httpx.Response(200, json=query("Success", FILE_ID)),
        httpx.Response(200, json=RETRIEVED),
        httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42" + b"m" * 5000),
    )
    adapter = make(vendor)
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.idempotent_submit, adapter.supports_cancel) == (
        "minimax",
        False,
        False,
    )
    assert adapter.configured_models() is None

    submission = await adapter.submit(request())
    assert submission.backend_job_id == TASK
    post = vendor.seen[0]
    assert (post.method, post.url.path) == ("POST", "/v1/video_generation")
    assert post.headers["authorization"] == "Bearer mm_key"
    assert vendor.body(0) == {
        "model": "MiniMax-Hailuo-2.3",
        "prompt": "A harbour at dawn [Pan left]",
        "duration": 6,
        "resolution": "1080P",
    }

    seen = [await adapter.poll(TASK) for _ in range(4)]
    assert [(s.state, s.raw_state) for s in seen] == [
        ("queued", "Preparing"),
        ("queued", "Queueing"),
        ("running", "Processing"),
        ("succeeded", "Success"),
    ]
    assert all(s.next_poll_s == 5.0 and s.cost_usd_micros is None for s in seen)
    for req in vendor.seen[1:5]:
        assert (req.method, req.url.path, dict(req.url.params)) == (
            "GET",
            "/v1/query/video_generation",
            {"task_id": TASK},
        )
        assert req.headers["authorization"] == "Bearer mm_key"
    retrieve = vendor.seen[5]
    assert (retrieve.url.path, dict(retrieve.url.params)) == (
        "/v1/files/retrieve",
        {"file_id": FILE_ID},
    )
    assert retrieve.headers["authorization"] == "Bearer mm_key"
    assert seen[-1].output_url == VIDEO_URL

    video = await read(adapter, TASK, seen[-1])
    assert video == b"\x00\x00\x00\x18ftypmp42" + b"m" * 5000
    cdn = vendor.seen[-1]
    assert str(cdn.url) == VIDEO_URL and "authorization" not in cdn.headers


async def test_a_download_without_a_url_asks_for_one(make: Any) -> None:
    vendor = Vendor(
        httpx.Response(200, json=query("Success", FILE_ID)),
        httpx.Response(200, json=RETRIEVED),
        httpx.Response(200, content=b"bytes"),
    )
    assert await read(make(vendor), TASK, JobStatus(state="succeeded")) == b"bytes"


async def test_image_to_video_and_options(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, json={"task_id": TASK, "base_resp": OK}))
    adapter = make(vendor, prompt_optimizer=False)
    await adapter.submit(
        request(
            duration_s=10,
            resolution="768p",
            image="data:image/jpeg;base64,/9j/4AAQ",
            callback_url="https://gateway.test/hooks/minimax",
        )
    )
    assert vendor.body(0) == {
        "model": "MiniMax-Hailuo-2.3",
        "prompt": "A harbour at dawn [Pan left]",
        "duration": 10,
        "resolution": "768P",
        "first_frame_image": "data:image/jpeg;base64,/9j/4AAQ",
        "prompt_optimizer": False,
        "callback_url": "https://gateway.test/hooks/minimax",
    }


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image": "https://example.test/a.png", "last_frame": "https://e.test/b.png"}, "last"),
        ({"image": "s3://bucket/a.png"}, "image: MiniMax takes"),
        ({"duration_s": 6.5}, "whole seconds"),
    ],
)
def test_inputs_minimax_cannot_take_are_refused(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        to_payload(request(**overrides))


@pytest.mark.parametrize(
    ("code", "failure_code", "failure_class"),
    [
        (0, "generation_failed", "fallback"),
        (1027, "content_rejected", "fatal"),
        (1000, "generation_failed", "fallback"),
    ],
)
def test_a_failed_task_is_data(code: int, failure_code: str, failure_class: str) -> None:
    status = parse_status(query("Fail", base_resp={"status_code": code, "status_msg": "no"}))
    assert (status.state, status.raw_state) == ("failed", "Fail")
    assert status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == (failure_code, failure_class)


# --- errors -------------------------------------------------------------------------------


async def call(adapter: MiniMaxAdapter, op: str) -> Any:
    if op == "submit":
        return await adapter.submit(request())
    if op == "poll":
        return await adapter.poll(TASK)
    if op == "cancel":
        return await adapter.cancel(TASK)
    return await read(adapter, TASK, JobStatus(state="succeeded", output_url=VIDEO_URL))


def reply(status: int, **kw: Any) -> httpx.Response:
    return httpx.Response(status, **kw)


ERRORS = [
    # errors in HTTP 200 answers
    (
        "submit",
        base_error(1002, "rate limit", **{"Retry-After": "7"}),
        RateLimited,
        "rate_limited",
        7,
    ),
    ("submit", base_error(1000, "unknown"), RetryableError, "server_error", None),
    ("submit", base_error(1001, "timeout"), RetryableError, "timeout", None),
    ("submit", base_error(1004, "auth failed"), BackendFailure, "auth_failed", None),
    ("submit", base_error(1008, "insufficient balance"), BackendFailure, "billing", None),
    ("submit", base_error(1026, "input sensitive"), ContentRejected, "content_rejected", None),
    ("submit", base_error(2013, "invalid params"), InvalidInput, "invalid_input", None),
    (
        "submit",
        base_error(2038, "real-name verification"),
        BackendFailure,
        "account_unverified",
        None,
    ),
    ("submit", base_error(1039, "something new"), BackendFailure, "vendor_error", None),
    ("poll", base_error(1002, "rate limit"), RateLimited, "rate_limited", None),
    ("poll", base_error(2013, "invalid task_id"), BackendJobLost, "not_found", None),
    # errors in the HTTP status
    (
        "submit",
        reply(429, text="slow down", headers={"Retry-After": "3"}),
        RateLimited,
        "rate_limited",
        3,
    ),
    ("submit", reply(500, text="oops"), RetryableError, "server_error", None),
    ("poll", reply(503), RetryableError, "server_error", None),
    ("submit", reply(400, text="bad request"), InvalidInput, "invalid_input", None),
    ("submit", reply(422, text="unprocessable"), InvalidInput, "invalid_input", None),
    ("submit", reply(401, text="unauthorized"), BackendFailure, "auth_failed", None),
    ("poll", reply(404, text="not found"), BackendJobLost, "not_found", None),
    ("download", reply(403, text="AccessDenied"), BackendFailure, "auth_failed", None),
    ("download", reply(404, text="NoSuchKey"), BackendJobLost, "not_found", None),
    # what MiniMax cannot do, and bodies that make no sense
    ("cancel", None, BackendFailure, "cancel_unsupported", None),
    ("poll", reply(200, json=query("Paused")), BackendFailure, "unknown_state", None),
    ("poll", reply(200, text="{not json"), RetryableError, "malformed", None),
    ("poll", reply(200, json=query("Success")), RetryableError, "malformed", None),
    ("submit", reply(200, json={"base_resp": OK}), RetryableError, "malformed", None),
]


@pytest.mark.parametrize(("op", "answer", "error", "code", "after"), ERRORS)
async def test_errors_are_classified_once(
    make: Any, op: str, answer: Any, error: type[AdapterError], code: str, after: float | None
) -> None:
    vendor = Vendor(*([answer] if answer is not None else []))
    with pytest.raises(AdapterError) as caught:
        await call(make(vendor), op)
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.retry_after) == (code, after)


async def test_a_success_whose_file_has_no_url_is_retried(make: Any) -> None:
    vendor = Vendor(
        httpx.Response(200, json=query("Success", FILE_ID)),
        httpx.Response(200, json={"file": {"file_id": int(FILE_ID)}, "base_resp": OK}),
    )
    with pytest.raises(RetryableError, match="download_url"):
        await make(vendor).poll(TASK)


async def test_the_trace_id_is_in_the_message(make: Any) -> None:
    vendor = Vendor(reply(500, text="oops", headers={"Trace-Id": "trace-42"}))
    with pytest.raises(RetryableError, match="trace-42"):
        await make(vendor).submit(request())


@pytest.mark.parametrize(
    ("answer", "unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("dropped"), True),
        (httpx.Response(200, text="{truncated"), True),
        (base_error(1000, "unknown"), False),
    ],
)
async def test_a_submit_that_may_have_landed_says_so(make: Any, answer: Any, unknown: bool) -> None:
    vendor = Vendor(answer)
    with pytest.raises(RetryableError) as caught:
        await make(vendor).submit(request())
    assert caught.value.outcome_unknown is unknown
    assert len(vendor.seen) == 1  # a create is never retried inside the adapter
