"""SeedanceAdapter against scripted answers shaped as ModelArk documents them.

Shapes: ``vendors.md`` §8 (vercel/ai's ByteDance provider and its recorded task
``issue-17883-status-response.json``; the ``{"error": {"code", "message"}}`` body).
Error codes beyond the reference are ModelArk's public error table (UNCONFIRMED there).
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
from adapters.seedance import SeedanceAdapter, parse_status, to_payload

API = "https://ark.ap-southeast.bytepluses.com/api/v3"
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


def refusal(status: int, code: str, message: str = "it went wrong", **headers: str) -> Any:
    body = {"error": {"code": code, "message": f"{message}. Request id: 0217"}}
    return httpx.Response(status, json=body, headers=headers)


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
    made: list[SeedanceAdapter] = []

    def build(vendor: Vendor) -> SeedanceAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(vendor), base_url=API)
        made.append(SeedanceAdapter("ark_key", client=client))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


async def read(adapter: SeedanceAdapter, job: str, status: JobStatus) -> bytes:
    return b"".join([chunk async for chunk in adapter.download(job, status)])


# --- the happy path -----------------------------------------------------------------------


async def test_submit_poll_download(make: Any) -> None:
    vendor = Vendor(
        httpx.Response(200, json={"id": TASK}),
        httpx.Response(200, json=task("queued")),
        httpx.Response(200, json=task("running")),
        httpx.Response(200, json=task("succeeded")),
        httpx.Response(200, content=b"\x00\x00\x00\x18ftypisom" + b"s" * 5000),
    )
    adapter = make(vendor)
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.idempotent_submit, adapter.supports_cancel) == (
        "seedance",
        False,
        True,
    )
    assert adapter.configured_models() is None

    submission = await adapter.submit(request())
    assert submission.backend_job_id == TASK
    post = vendor.seen[0]
    assert (post.method, str(post.url)) == ("POST", f"{API}/contents/generations/tasks")
    assert post.headers["authorization"] == "Bearer ark_key"
    assert vendor.body(0) == {
        "model": "seedance-1-0-pro-250528",
        "content": [{"type": "text", "text": "A harbour at dawn, the camera pans left"}],
        "ratio": "16:9",
        "duration": 5,
        "resolution": "720p",
        "seed": 17918,
    }

    seen = [await adapter.poll(TASK) for _ in range(3)]
    assert [(s.state, s.raw_state) for s in seen] == [
        ("queued", "queued"),
        ("running", "running"),
        ("succeeded", "succeeded"),
    ]
    # usage.completion_tokens is reported, but no USD price per token is documented
    assert all(s.next_poll_s == 3.0 and s.cost_usd_micros is None for s in seen)
    assert seen[-1].output_url == VIDEO_URL
    for req in vendor.seen[1:4]:
        assert (req.method, str(req.url)) == ("GET", f"{API}/contents/generations/tasks/{TASK}")
        assert req.headers["authorization"] == "Bearer ark_key"

    video = await read(adapter, TASK, seen[-1])
    assert video == b"\x00\x00\x00\x18ftypisom" + b"s" * 5000
    cdn = vendor.seen[-1]
    assert str(cdn.url) == VIDEO_URL and "authorization" not in cdn.headers


async def test_cancel_deletes_the_task(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, json={}), httpx.Response(200, json=task("cancelled")))
    adapter = make(vendor)
    await adapter.cancel(TASK)
    assert (vendor.seen[0].method, vendor.seen[0].url.path) == (
        "DELETE",
        f"/api/v3/contents/generations/tasks/{TASK}",
    )
    assert vendor.seen[0].headers["authorization"] == "Bearer ark_key"
    status = await adapter.poll(TASK)
    assert (status.state, status.raw_state, status.failure) == ("canceled", "cancelled", None)


def test_frames_are_content_items_with_roles_only_when_both_are_given() -> None:
    first, last = "https://example.test/first.png", "data:image/png;base64,iVBORw0KGgo="
    only_first = to_payload(request(image=first))["content"]
    assert only_first[1:] == [{"type": "image_url", "image_url": {"url": first}}]
    both = to_payload(request(image=first, last_frame=last, audio=True))
    assert both["content"][1:] == [
        {"type": "image_url", "image_url": {"url": first}, "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": last}, "role": "last_frame"},
    ]
    assert both["generate_audio"] is True
    assert "--" not in both["content"][0]["text"]  # parameters are fields, not prompt flags


def test_unset_options_stay_unset() -> None:
    body = to_payload(request(seed=None, resolution="1080P", aspect_ratio="21:9", duration_s=12))
    assert (body["ratio"], body["duration"], body["resolution"]) == ("21:9", 12, "1080p")
    assert not {"seed", "generate_audio", "negative_prompt", "callback_url"} & body.keys()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"last_frame": "https://example.test/b.png"}, "last_frame needs a first frame"),
        ({"image": "gs://bucket/a.png"}, "image: Seedance takes"),
        ({"duration_s": 4.5}, "whole s"),
    ],
)
def test_inputs_seedance_cannot_take_are_refused(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        to_payload(request(**overrides))


@pytest.mark.parametrize(
    ("record", "failure_code", "failure_class"),
    [
        (task("failed"), "generation_failed", "fallback"),
        (
            task("failed", error={"code": "InternalServiceError", "message": "try later"}),
            "InternalServiceError",
            "fallback",
        ),
        (
            task("failed", error={"code": "OutputVideoSensitiveContentDetected", "message": "no"}),
            "content_rejected",
            "fatal",
        ),
        (task("expired"), "expired", "fallback"),
    ],
)
def test_a_failed_task_is_data(record: Any, failure_code: str, failure_class: str) -> None:
    status = parse_status(record)
    assert status.state == "failed" and status.raw_state == record["status"]
    assert status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == (failure_code, failure_class)


# --- errors -------------------------------------------------------------------------------


async def call(adapter: SeedanceAdapter, op: str) -> Any:
    if op == "submit":
        return await adapter.submit(request())
    if op == "poll":
        return await adapter.poll(TASK)
    if op == "cancel":
        return await adapter.cancel(TASK)
    return await read(adapter, TASK, JobStatus(state="succeeded", output_url=VIDEO_URL))


def reply(status: int, **kw: Any) -> httpx.Response:
    return httpx.Response(status, **kw)


RATE = "RateLimitExceeded.EndpointRPMExceeded"
ERRORS = [
    ("submit", refusal(429, RATE, **{"Retry-After": "7"}), RateLimited, "rate_limited", 7),
    ("submit", refusal(429, "ServerOverloaded"), RateLimited, "rate_limited", None),
    ("submit", refusal(429, "QuotaExceeded"), BackendFailure, "billing", None),
    ("submit", refusal(429, "SetLimitExceeded"), BackendFailure, "billing", None),
    ("submit", refusal(403, "AccountOverdueError"), BackendFailure, "billing", None),
    ("submit", refusal(500, "InternalServiceError"), RetryableError, "server_error", None),
    ("poll", reply(502, text="<html>bad gateway</html>"), RetryableError, "server_error", None),
    ("submit", refusal(400, "InvalidParameter"), InvalidInput, "invalid_input", None),
    ("submit", refusal(400, "MissingParameter"), InvalidInput, "invalid_input", None),
    (
        "submit",
        refusal(400, "InputTextSensitiveContentDetected"),
        ContentRejected,
        "content_rejected",
        None,
    ),
    (
        "submit",
        refusal(400, "InputImageSensitiveContentDetected"),
        ContentRejected,
        "content_rejected",
        None,
    ),
    ("submit", refusal(400, "InputTextRiskDetection"), ContentRejected, "content_rejected", None),
    ("submit", refusal(401, "AuthenticationError"), BackendFailure, "auth_failed", None),
    ("submit", refusal(403, "AccessDenied"), BackendFailure, "auth_failed", None),
    ("submit", refusal(404, "InvalidEndpointOrModel.NotFound"), BackendFailure, "not_found", None),
    ("poll", refusal(404, "ResourceNotFound"), BackendJobLost, "not_found", None),
    ("cancel", refusal(404, "ResourceNotFound"), BackendJobLost, "not_found", None),
    ("download", reply(404, text="NoSuchKey"), BackendJobLost, "not_found", None),
    ("download", reply(503), RetryableError, "server_error", None),
    ("poll", reply(200, json=task("paused")), BackendFailure, "unknown_state", None),
    ("poll", reply(200, json={"id": TASK}), BackendFailure, "unknown_state", None),
    ("poll", reply(200, text="{not json"), RetryableError, "malformed", None),
    ("poll", reply(200, json=task("succeeded", content={})), RetryableError, "malformed", None),
    ("submit", reply(200, json={"task_id": TASK}), RetryableError, "malformed", None),
    ("submit", reply(200, json=[TASK]), RetryableError, "malformed", None),
]


@pytest.mark.parametrize(("op", "answer", "error", "code", "after"), ERRORS)
async def test_errors_are_classified_once(
    make: Any, op: str, answer: Any, error: type[AdapterError], code: str, after: float | None
) -> None:
    with pytest.raises(AdapterError) as caught:
        await call(make(Vendor(answer)), op)
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.retry_after) == (code, after)


async def test_a_refusal_carries_the_vendors_code_and_message(make: Any) -> None:
    vendor = Vendor(refusal(400, "InvalidParameter", "duration 7 is not valid for this model"))
    with pytest.raises(InvalidInput, match=r"InvalidParameter: duration 7 is not valid") as caught:
        await make(vendor).submit(request())
    assert caught.value.failure_class == "fatal"


@pytest.mark.parametrize(
    ("answer", "unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("dropped"), True),
        (httpx.Response(200, text="{truncated"), True),
        (refusal(500, "InternalServiceError"), False),
    ],
)
async def test_a_submit_that_may_have_landed_says_so(make: Any, answer: Any, unknown: bool) -> None:
    vendor = Vendor(answer)
    with pytest.raises(RetryableError) as caught:
        await make(vendor).submit(request())
    assert caught.value.outcome_unknown is unknown
    assert len(vendor.seen) == 1  # a create is never retried inside the adapter
