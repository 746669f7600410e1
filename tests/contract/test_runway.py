"""RunwayAdapter against scripted answers shaped as Runway documents them.

Shapes: runwayml/sdk-python 5.13.0 (``types/task_retrieve_response.py``, the create
params and response) and docs.dev.runwayml.com (errors, task failures, usage tiers).
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
    GenerationRequest,
    InvalidInput,
    JobStatus,
    RateLimited,
    RetryableError,
)
from adapters.runway import RunwayAdapter, parse_status, to_payload

API = "https://api.dev.runwayml.com"
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
    made: list[RunwayAdapter] = []

    def build(vendor: Vendor) -> RunwayAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
        made.append(RunwayAdapter("rw_key", client=client))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


def assert_authorized(req: httpx.Request) -> None:
    assert req.headers["authorization"] == "Bearer rw_key"
    assert req.headers["x-runway-version"] == "2024-11-06"


# --- submit -------------------------------------------------------------------------------


async def test_the_adapter_declares_what_it_can_do(make: Any) -> None:
    adapter = make(Vendor())
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.idempotent_submit, adapter.supports_cancel) == (
        "runway",
        False,
        True,
    )
    assert adapter.configured_models() is None


async def test_submit_text_to_video(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, json={"id": TASK}))
    submission = await make(vendor).submit(request(seed=42, negative_prompt="blur", audio=True))
    assert (submission.backend_job_id, submission.poll_after_s) == (TASK, 5.0)
    (sent,) = vendor.seen
    assert (sent.method, str(sent.url)) == ("POST", f"{API}/v1/text_to_video")
    assert_authorized(sent)
    assert vendor.body() == {  # gen4.5 takes no negativePrompt and no audio switch
        "model": "gen4.5",
        "promptText": "A harbour at dawn, the camera pans left",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 42,
    }


async def test_submit_image_to_video_with_first_and_last_frames(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, json={"id": TASK}))
    shot = request(
        model="veo3.1",
        duration_s=8,
        resolution="1080p",
        aspect_ratio="9:16",
        width=1080,
        height=1920,
        negative_prompt="text, watermark",
        image="https://example.com/first.png",
        last_frame="data:image/png;base64,iVBORw0KGgo=",
    )
    await make(vendor).submit(shot)
    assert str(vendor.seen[0].url) == f"{API}/v1/image_to_video"
    assert vendor.body() == {
        "model": "veo3.1",
        "promptText": "A harbour at dawn, the camera pans left",
        "ratio": "1080:1920",
        "duration": 8,
        "negativePrompt": "text, watermark",
        "audio": False,
        "promptImage": [
            {"uri": "https://example.com/first.png", "position": "first"},
            {"uri": "data:image/png;base64,iVBORw0KGgo=", "position": "last"},
        ],
    }


@pytest.mark.parametrize(
    ("overrides", "ratio"),
    [
        ({"aspect_ratio": "16:9"}, "1280:720"),
        ({"aspect_ratio": "9:16"}, "720:1280"),
        ({"aspect_ratio": "4:3"}, "1104:832"),
        ({"aspect_ratio": "1:1"}, "960:960"),
        ({"aspect_ratio": "3:4"}, "832:1104"),
        ({"aspect_ratio": "21:9"}, "1584:672"),
        ({"aspect_ratio": "2:1", "width": 1440, "height": 720}, "1440:720"),  # not documented
    ],
)
def test_the_ratio_is_runways_pixel_size(overrides: dict[str, Any], ratio: str) -> None:
    assert to_payload(request(**overrides))[1]["ratio"] == ratio


def test_a_single_first_frame_is_a_plain_uri() -> None:
    path, body = to_payload(request(image="runway://upload/abc", duration_s=6.4))
    assert (path, body["promptImage"], body["duration"]) == (
        "/v1/image_to_video",
        "runway://upload/abc",
        6,
    )


@pytest.mark.parametrize("image", ["http://example.com/a.png", "s3://bucket/a.png", "a.png"])
async def test_an_image_runway_cannot_fetch_is_invalid_input(make: Any, image: str) -> None:
    vendor = Vendor()
    with pytest.raises(InvalidInput, match="https URLs, data: URIs") as caught:
        await make(vendor).submit(request(image=image))
    assert caught.value.code == "invalid_image" and vendor.seen == []


# --- poll ---------------------------------------------------------------------------------


async def test_poll_through_every_documented_state(make: Any) -> None:
    vendor = Vendor(
        *(
            httpx.Response(200, json=body)
            for body in (
                task("PENDING"),
                task("THROTTLED"),
                task("RUNNING", progress=0.42),
                task("SUCCEEDED", output=[VIDEO_URL]),
            )
        )
    )
    adapter = make(vendor)
    seen = [await adapter.poll(TASK) for _ in range(4)]
    assert [(s.state, s.raw_state, s.progress, s.next_poll_s) for s in seen] == [
        ("queued", "PENDING", None, 5.0),
        ("queued", "THROTTLED", None, 10.0),
        ("running", "RUNNING", 0.42, 5.0),
        ("succeeded", "SUCCEEDED", 1.0, 5.0),
    ]
    assert seen[-1].output_url == VIDEO_URL and seen[-1].cost_usd_micros is None
    for sent in vendor.seen:
        assert (sent.method, str(sent.url)) == ("GET", f"{API}/v1/tasks/{TASK}")
        assert_authorized(sent)


@pytest.mark.parametrize(
    ("failure_code", "code", "klass"),
    [
        ("SAFETY.INPUT.TEXT", "SAFETY.INPUT.TEXT", "fatal"),  # a content refusal
        ("SAFETY.OUTPUT.VIDEO", "SAFETY.OUTPUT.VIDEO", "fatal"),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", "INPUT_PREPROCESSING.SAFETY.TEXT", "fatal"),
        ("ASSET.INVALID", "ASSET.INVALID", "fatal"),
        ("INTERNAL.BAD_OUTPUT.CODE01", "INTERNAL.BAD_OUTPUT.CODE01", "fallback"),
        ("INPUT_PREPROCESSING.INTERNAL", "INPUT_PREPROCESSING.INTERNAL", "retryable"),
        ("INTERNAL", "INTERNAL", "retryable"),
        ("THIRD_PARTY.UNAVAILABLE", "THIRD_PARTY.UNAVAILABLE", "retryable"),
        ("SOMETHING.NEW", "SOMETHING.NEW", "fallback"),
        (None, "generation_failed", "fallback"),  # failureCode is optional
    ],
)
def test_a_failed_task_is_data(failure_code: str | None, code: str, klass: str) -> None:
    body = task("FAILED", failure="Prompt rejected by moderation")
    if failure_code is not None:
        body["failureCode"] = failure_code
    status = parse_status(body)
    assert (status.state, status.raw_state) == ("failed", "FAILED")
    assert status.failure is not None
    assert status.failure.model_dump() == {
        "code": code,
        "message": "Prompt rejected by moderation",
        "failure_class": klass,
    }


def test_a_cancelled_task_is_canceled() -> None:
    status = parse_status(task("CANCELLED"))
    assert (status.state, status.failure, status.output_url) == ("canceled", None, None)


# --- cancel and download ------------------------------------------------------------------


async def test_cancel_deletes_the_task(make: Any) -> None:
    vendor = Vendor(httpx.Response(204))
    assert await make(vendor).cancel(TASK) is None
    (sent,) = vendor.seen
    assert (sent.method, str(sent.url)) == ("DELETE", f"{API}/v1/tasks/{TASK}")
    assert_authorized(sent)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def fetch(adapter: RunwayAdapter, status: JobStatus) -> list[bytes]:
    return [chunk async for chunk in adapter.download(TASK, status)]


async def test_download_streams_the_output_without_the_runway_key(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, content=chunks(b"\0\0\0\x18ftypmp42", b"rest")))
    got = await fetch(make(vendor), parse_status(task("SUCCEEDED", output=[VIDEO_URL])))
    assert got == [b"\0\0\0\x18ftypmp42", b"rest"]
    (sent,) = vendor.seen
    assert (sent.method, str(sent.url)) == ("GET", VIDEO_URL)
    assert "authorization" not in sent.headers and "x-runway-version" not in sent.headers


async def test_an_expired_output_url_is_refreshed_once(make: Any) -> None:
    fresh = "https://dnznrvs05pmza.cloudfront.net/video.mp4?_jwt=fresh"
    vendor = Vendor(
        httpx.Response(403, text="<Error>AccessDenied</Error>"),
        httpx.Response(200, json=task("SUCCEEDED", output=[fresh])),
        httpx.Response(200, content=b"video"),
    )
    got = await fetch(make(vendor), JobStatus(state="succeeded", output_url=VIDEO_URL))
    assert got == [b"video"]
    assert [str(r.url) for r in vendor.seen] == [VIDEO_URL, f"{API}/v1/tasks/{TASK}", fresh]


@pytest.mark.parametrize("refused", [403, 404])
async def test_a_download_that_stays_refused_is_a_lost_job(make: Any, refused: int) -> None:
    vendor = Vendor(
        httpx.Response(refused),
        httpx.Response(200, json=task("SUCCEEDED", output=[VIDEO_URL])),
        httpx.Response(refused),
    )
    with pytest.raises(BackendJobLost) as caught:
        await fetch(make(vendor), JobStatus(state="succeeded", output_url=VIDEO_URL))
    assert caught.value.code == "output_gone"


async def test_a_download_without_a_url_asks_the_task(make: Any) -> None:
    vendor = Vendor(
        httpx.Response(200, json=task("SUCCEEDED", output=[VIDEO_URL])),
        httpx.Response(200, content=b"video"),
    )
    assert await fetch(make(vendor), JobStatus(state="succeeded")) == [b"video"]


# --- errors -------------------------------------------------------------------------------


async def call(adapter: RunwayAdapter, op: str) -> Any:
    if op == "submit":
        return await adapter.submit(request())
    if op == "poll":
        return await adapter.poll(TASK)
    if op == "cancel":
        return await adapter.cancel(TASK)
    status = JobStatus(state="succeeded", output_url=VIDEO_URL)
    return await fetch(adapter, status)


def error(status: int, message: str = "Something went wrong", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": message}, headers=headers)


NO_OUTPUT = task("SUCCEEDED", output=[])
ERRORS = [
    ("submit", error(429, **{"Retry-After": "7"}), RateLimited, "rate_limited", 7.0),
    ("submit", error(429, "Daily task limit reached"), BackendFailure, "quota_exceeded", None),
    ("poll", error(429), RateLimited, "rate_limited", None),
    ("submit", error(502), RetryableError, "unavailable", None),
    ("submit", error(503, **{"Retry-After": "2"}), RetryableError, "unavailable", 2.0),
    ("poll", httpx.Response(504, text="<html>timeout</html>"), RetryableError, "unavailable", None),
    ("submit", error(400, "Invalid ratio"), InvalidInput, "invalid_input", None),
    ("submit", error(422), InvalidInput, "invalid_input", None),
    ("submit", error(401, "Invalid API key"), BackendFailure, "unauthorized", None),
    ("poll", error(403), BackendFailure, "unauthorized", None),
    ("submit", error(402), BackendFailure, "insufficient_credits", None),
    ("submit", error(404), BackendFailure, "http_404", None),
    ("submit", error(405), BackendFailure, "http_405", None),
    ("poll", error(404, "Task not found"), BackendJobLost, "task_not_found", None),
    ("cancel", error(404), BackendJobLost, "task_not_found", None),
    ("poll", httpx.Response(200, json=task("PAUSED")), BackendFailure, "unknown_state", None),
    ("poll", httpx.Response(200, json={"id": TASK}), RetryableError, "malformed", None),
    ("poll", httpx.Response(200, json=NO_OUTPUT), RetryableError, "malformed", None),
    ("poll", httpx.Response(200, text="{not json"), RetryableError, "malformed", None),
    ("submit", httpx.Response(200, json=["a list"]), RetryableError, "malformed", None),
    ("submit", httpx.Response(200, json={"task": TASK}), RetryableError, "malformed", None),
    ("submit", httpx.ConnectError("refused"), RetryableError, "unreachable", None),
    ("poll", httpx.ReadTimeout("slow"), RetryableError, "timeout", None),
    ("download", httpx.ReadError("reset"), RetryableError, "unreachable", None),
    ("download", httpx.Response(503), RetryableError, "unavailable", None),
]


@pytest.mark.parametrize(("op", "answer", "kind", "code", "wait"), ERRORS)
async def test_errors_are_classified_once(
    make: Any, op: str, answer: Any, kind: type[AdapterError], code: str, wait: float | None
) -> None:
    with pytest.raises(AdapterError) as caught:
        await call(make(Vendor(answer)), op)
    assert type(caught.value) is kind
    assert (caught.value.code, caught.value.retry_after) == (code, wait)


async def test_a_quota_429_is_not_retried_but_falls_back(make: Any) -> None:
    with pytest.raises(BackendFailure) as caught:
        await make(Vendor(error(429, "Daily task limit reached"))).submit(request())
    assert caught.value.failure_class == "fallback" and not caught.value.retryable
    assert "Daily task limit reached" in caught.value.message


async def test_a_400_carries_runways_explanation(make: Any) -> None:
    with pytest.raises(InvalidInput, match="promptText must be 1000 characters") as caught:
        await make(Vendor(error(400, "promptText must be 1000 characters or fewer"))).submit(
            request()
        )
    assert caught.value.failure_class == "fatal"


@pytest.mark.parametrize(
    ("answer", "unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("dropped"), True),
        (httpx.Response(200, text="{truncated"), True),
        (error(500), False),
    ],
)
async def test_a_submit_that_may_have_landed_says_so(make: Any, answer: Any, unknown: bool) -> None:
    with pytest.raises(RetryableError) as caught:
        await make(Vendor(answer)).submit(request())
    assert caught.value.outcome_unknown is unknown


async def test_base_url_points_the_adapter_at_an_emulator() -> None:
    vendor = Vendor(httpx.Response(200, json={"id": TASK}))
    client = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    adapter = RunwayAdapter("rw_key", base_url="http://emulator:9000/", client=client)
    await adapter.submit(request())
    assert str(vendor.seen[0].url) == "http://emulator:9000/v1/text_to_video"
    await adapter.aclose()
    assert client.is_closed


async def test_a_client_with_its_own_base_url_is_used_as_configured() -> None:
    vendor = Vendor(httpx.Response(200, json={"id": TASK}))
    transport = httpx.MockTransport(vendor)
    client = httpx.AsyncClient(transport=transport, base_url="http://emulator:9000/api")
    adapter = RunwayAdapter("rw_key", client=client)
    await adapter.submit(request())
    assert str(vendor.seen[0].url) == "http://emulator:9000/api/v1/text_to_video"
    await adapter.aclose()
