"""LumaAdapter against scripted answers shaped as Luma documents them.

Shapes: lumalabs/luma-agents-python 0.3.0 (``types/generation.py``, the create params),
docs.agents.lumalabs.ai (error handling, rate limits) and, for the legacy Dream Machine
API, lumalabs/lumaai-python (``types/generation.py``, ``resources/generations/video.py``).
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
from adapters.luma import LumaAdapter, parse_status, to_dream_machine_payload, to_payload

AGENTS = "https://agents.lumalabs.ai/v1"
DREAM = "https://api.lumalabs.ai/dream-machine/v1"
GEN = "5f0c7a43-0f3e-4c5e-9b4a-2d2f4c9a8e11"
VIDEO_URL = "https://storage.cdn-luma.com/agents/gen/video.mp4?X-Amz-Signature=abc"


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
    made: list[LumaAdapter] = []

    def build(vendor: Vendor, **kw: Any) -> LumaAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
        made.append(LumaAdapter("luma_key", client=client, **kw))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


# --- Agents API: submit -------------------------------------------------------------------


async def test_the_adapter_declares_what_it_can_do(make: Any) -> None:
    adapter = make(Vendor())
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.idempotent_submit, adapter.supports_cancel) == (
        "luma",
        False,
        False,
    )
    assert adapter.configured_models() is None and adapter.api == "agents"


async def test_submit_text_to_video(make: Any) -> None:
    vendor = Vendor(httpx.Response(201, json=generation("queued")))
    shot = request(seed=7, negative_prompt="blur", audio=True, callback_url="https://gw/hook")
    submission = await make(vendor).submit(shot)
    assert (submission.backend_job_id, submission.poll_after_s) == (GEN, 5.0)
    (sent,) = vendor.seen
    assert (sent.method, str(sent.url)) == ("POST", f"{AGENTS}/generations")
    assert sent.headers["authorization"] == "Bearer luma_key"
    assert sent.headers["x-request-id"] == "att_1"
    assert vendor.body() == {  # no seed, negative prompt, audio or webhook in this API
        "type": "video",
        "model": "ray-3.2",
        "prompt": "A harbour at dawn, the camera pans left",
        "aspect_ratio": "16:9",
        "video": {"duration": "5s", "resolution": "720p"},
    }


async def test_submit_with_first_and_last_frames(make: Any) -> None:
    vendor = Vendor(httpx.Response(201, json=generation("queued")))
    shot = request(
        duration_s=10,
        resolution="1080p",
        aspect_ratio="21:9",
        image="https://example.com/first.png",
        last_frame="data:image/jpeg;base64,/9j/4AAQSkZJRg==",
    )
    await make(vendor).submit(shot)
    assert vendor.body()["video"] == {
        "duration": "10s",
        "resolution": "1080p",
        "start_frame": {"url": "https://example.com/first.png"},
        "end_frame": {"data": "/9j/4AAQSkZJRg==", "media_type": "image/jpeg"},
    }


@pytest.mark.parametrize(
    "image", ["s3://bucket/a.png", "data:image/png,rawbytes", "data:;base64,AAAA", "a.png"]
)
async def test_an_image_luma_cannot_take_is_invalid_input(make: Any, image: str) -> None:
    vendor = Vendor()
    with pytest.raises(InvalidInput) as caught:
        await make(vendor).submit(request(image=image))
    assert caught.value.code == "invalid_image" and vendor.seen == []


# --- Agents API: poll ---------------------------------------------------------------------


async def test_poll_through_every_documented_state(make: Any) -> None:
    done = generation("completed", output=[{"type": "video", "url": VIDEO_URL}])
    bodies = [generation("queued"), generation("processing"), done]
    vendor = Vendor(*(httpx.Response(200, json=body) for body in bodies))
    adapter = make(vendor)
    seen = [await adapter.poll(GEN) for _ in bodies]
    assert [(s.state, s.raw_state, s.progress, s.next_poll_s) for s in seen] == [
        ("queued", "queued", None, 5.0),
        ("running", "processing", None, 5.0),
        ("succeeded", "completed", 1.0, 5.0),
    ]
    assert seen[-1].output_url == VIDEO_URL and seen[-1].cost_usd_micros is None
    for sent in vendor.seen:
        assert (sent.method, str(sent.url)) == ("GET", f"{AGENTS}/generations/{GEN}")
        assert sent.headers["authorization"] == "Bearer luma_key"


def test_the_video_output_is_picked_among_outputs() -> None:
    outputs = [
        {"type": "image", "url": "https://cdn/thumb.png"},
        {"type": "video", "url": VIDEO_URL},
    ]
    assert parse_status(generation("completed", output=outputs)).output_url == VIDEO_URL


@pytest.mark.parametrize(
    ("failure_code", "code", "klass"),
    [
        ("content_moderated", "content_moderated", "fatal"),  # a content refusal
        ("generation_failed", "generation_failed", "retryable"),
        ("budget_exhausted", "budget_exhausted", "fallback"),
        ("output_not_found", "output_not_found", "retryable"),
        ("image_too_large", "image_too_large", "fatal"),
        ("unsupported_format", "unsupported_format", "fatal"),
        ("corrupt_input", "corrupt_input", "fatal"),
        ("invalid_request", "invalid_request", "fatal"),
        ("rate_limited", "rate_limited", "retryable"),
        ("something_new", "something_new", "fallback"),
        (None, "generation_failed", "fallback"),
    ],
)
def test_a_failed_generation_is_data(failure_code: str | None, code: str, klass: str) -> None:
    body = generation("failed", failure_code=failure_code, failure_reason="It went wrong")
    status = parse_status(body)
    assert (status.state, status.raw_state) == ("failed", "failed")
    assert status.failure is not None
    assert status.failure.model_dump() == {
        "code": code,
        "message": "It went wrong",
        "failure_class": klass,
    }


async def test_cancel_is_not_offered(make: Any) -> None:
    vendor = Vendor()
    with pytest.raises(BackendFailure, match="cannot cancel"):
        await make(vendor).cancel(GEN)
    assert vendor.seen == []


# --- download -----------------------------------------------------------------------------


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def fetch(adapter: LumaAdapter, status: JobStatus) -> list[bytes]:
    return [chunk async for chunk in adapter.download(GEN, status)]


async def test_download_streams_the_output_without_the_luma_key(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, content=chunks(b"\0\0\0\x18ftypmp42", b"rest")))
    done = generation("completed", output=[{"type": "video", "url": VIDEO_URL}])
    assert await fetch(make(vendor), parse_status(done)) == [b"\0\0\0\x18ftypmp42", b"rest"]
    (sent,) = vendor.seen
    assert (sent.method, str(sent.url)) == ("GET", VIDEO_URL)
    assert "authorization" not in sent.headers


async def test_a_link_past_its_hour_is_refreshed_once(make: Any) -> None:
    fresh = VIDEO_URL.replace("abc", "fresh")
    vendor = Vendor(
        httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>"),
        httpx.Response(200, json=generation("completed", output=[{"type": "video", "url": fresh}])),
        httpx.Response(200, content=b"video"),
    )
    got = await fetch(make(vendor), JobStatus(state="succeeded", output_url=VIDEO_URL))
    assert got == [b"video"]
    assert [str(r.url) for r in vendor.seen] == [VIDEO_URL, f"{AGENTS}/generations/{GEN}", fresh]


async def test_a_link_still_refused_after_a_refresh_is_a_lost_job(make: Any) -> None:
    done = generation("completed", output=[{"type": "video", "url": VIDEO_URL}])
    vendor = Vendor(httpx.Response(403), httpx.Response(200, json=done), httpx.Response(403))
    with pytest.raises(BackendJobLost) as caught:
        await fetch(make(vendor), JobStatus(state="succeeded", output_url=VIDEO_URL))
    assert caught.value.code == "output_gone"


async def test_a_generation_that_is_not_done_has_nothing_to_download(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, json=generation("processing")))
    with pytest.raises(BackendFailure) as caught:
        await fetch(make(vendor), JobStatus(state="succeeded"))
    assert caught.value.code == "no_output"


# --- errors -------------------------------------------------------------------------------


async def call(adapter: LumaAdapter, op: str) -> Any:
    if op == "submit":
        return await adapter.submit(request())
    if op == "poll":
        return await adapter.poll(GEN)
    return await fetch(adapter, JobStatus(state="succeeded", output_url=VIDEO_URL))


def error(status: int, detail: Any = "Something went wrong", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"detail": detail}, headers=headers)


VALIDATION = [{"loc": ["body", "video", "duration"], "msg": "must be 5s or 10s"}]
NO_URL = generation("completed", output=[])


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


RPM = error(429, "Rate limit exceeded", **{"Retry-After": "12"})
ERRORS = [
    ("submit", RPM, RateLimited, "rate_limited", 12.0),
    ("submit", error(429, "Too many concurrent jobs"), RateLimited, "rate_limited", None),
    ("submit", error(402, "Insufficient balance"), BackendFailure, "insufficient_balance", None),
    ("submit", error(502), RetryableError, "unavailable", None),
    ("submit", error(503, **{"Retry-After": "3"}), RetryableError, "unavailable", 3.0),
    ("poll", httpx.Response(500, text="Internal error"), RetryableError, "unavailable", None),
    ("submit", error(400, "Invalid aspect_ratio"), InvalidInput, "invalid_input", None),
    ("submit", error(413, "Image exceeds 50 MB"), InvalidInput, "invalid_input", None),
    ("submit", error(422, VALIDATION), InvalidInput, "invalid_input", None),
    ("submit", error(401, "Invalid API key"), BackendFailure, "unauthorized", None),
    ("submit", error(403, "Client deactivated"), BackendFailure, "unauthorized", None),
    ("poll", error(404, "Generation not found"), BackendJobLost, "not_found", None),
    ("submit", error(404), BackendFailure, "http_404", None),
    ("poll", ok(generation("paused")), BackendFailure, "unknown_state", None),
    ("poll", ok(generation("dreaming")), BackendFailure, "unknown_state", None),  # a DM word
    ("poll", ok({"id": GEN}), RetryableError, "malformed", None),
    ("poll", ok(NO_URL), RetryableError, "malformed", None),
    ("poll", httpx.Response(200, text="{not json"), RetryableError, "malformed", None),
    ("submit", httpx.Response(201, json=["a list"]), RetryableError, "malformed", None),
    ("submit", httpx.Response(201, json={"state": "queued"}), RetryableError, "malformed", None),
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


async def test_billing_is_not_retried_but_falls_back(make: Any) -> None:
    with pytest.raises(BackendFailure) as caught:
        await make(Vendor(error(402, "Insufficient balance"))).submit(request())
    assert caught.value.failure_class == "fallback" and not caught.value.retryable


async def test_a_validation_error_names_the_field(make: Any) -> None:
    with pytest.raises(InvalidInput, match=r"body\.video\.duration: must be 5s or 10s"):
        await make(Vendor(error(422, VALIDATION))).submit(request())


@pytest.mark.parametrize(
    ("answer", "unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("dropped"), True),
        (httpx.Response(201, text="{truncated"), True),
        (error(502), False),
    ],
)
async def test_a_submit_that_may_have_landed_says_so(make: Any, answer: Any, unknown: bool) -> None:
    with pytest.raises(RetryableError) as caught:
        await make(Vendor(answer)).submit(request())
    assert caught.value.outcome_unknown is unknown


# --- Dream Machine API (legacy) -----------------------------------------------------------


async def test_dream_machine_submit(make: Any) -> None:
    vendor = Vendor(httpx.Response(201, json=dream("queued")))
    shot = request(
        model="ray-2",
        duration_s=9,
        resolution="4k",
        aspect_ratio="9:21",
        image="https://example.com/first.png",
        last_frame="https://example.com/last.png",
        callback_url="https://gateway.example/hooks/luma",
    )
    adapter = make(vendor, api="dream-machine")
    assert (await adapter.submit(shot)).backend_job_id == GEN
    (sent,) = vendor.seen
    assert (sent.method, str(sent.url)) == ("POST", f"{DREAM}/generations/video")
    assert sent.headers["authorization"] == "Bearer luma_key"
    assert vendor.body() == {
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
    }


def test_dream_machine_text_to_video_has_no_keyframes() -> None:
    body = to_dream_machine_payload(request(model="ray-flash-2"))
    assert "keyframes" not in body and "callback_url" not in body


def test_dream_machine_keyframes_need_urls() -> None:
    with pytest.raises(InvalidInput, match="by URL only"):
        to_dream_machine_payload(request(model="ray-2", image="data:image/png;base64,AAAA"))
    assert to_payload(request(image="data:image/png;base64,AAAA"))["video"]["start_frame"] == {
        "data": "AAAA",
        "media_type": "image/png",
    }


async def test_dream_machine_poll_through_every_state_and_download(make: Any) -> None:
    video = "https://storage.cdn-luma.com/dream_machine/gen/video.mp4"
    bodies = [dream("queued"), dream("dreaming"), dream("completed", video)]
    vendor = Vendor(
        *(httpx.Response(200, json=body) for body in bodies),
        httpx.Response(200, content=chunks(b"mp4", b"bytes")),
    )
    adapter = make(vendor, api="dream-machine")
    seen = [await adapter.poll(GEN) for _ in bodies]
    assert [(s.state, s.raw_state) for s in seen] == [
        ("queued", "queued"),
        ("running", "dreaming"),
        ("succeeded", "completed"),
    ]
    assert [c async for c in adapter.download(GEN, seen[-1])] == [b"mp4", b"bytes"]
    assert [str(r.url) for r in vendor.seen] == [f"{DREAM}/generations/{GEN}"] * 3 + [video]
    assert "authorization" not in vendor.seen[-1].headers


def test_dream_machine_failure_and_unknown_states() -> None:
    failed = parse_status(
        dream("failed", failure_reason="400: prompt not allowed"), api="dream-machine"
    )
    assert failed.failure is not None
    assert failed.failure.model_dump() == {
        "code": "generation_failed",
        "message": "400: prompt not allowed",
        "failure_class": "fallback",
    }
    with pytest.raises(BackendFailure) as caught:
        parse_status(dream("processing"), api="dream-machine")
    assert caught.value.code == "unknown_state"
    with pytest.raises(RetryableError, match="without a video URL"):
        parse_status(dream("completed"), api="dream-machine")


async def test_base_url_points_the_adapter_at_an_emulator() -> None:
    vendor = Vendor(httpx.Response(201, json=generation("queued")))
    client = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    adapter = LumaAdapter("luma_key", base_url="http://emulator:9000/v1/", client=client)
    await adapter.submit(request())
    assert str(vendor.seen[0].url) == "http://emulator:9000/v1/generations"
    await adapter.aclose()
    assert client.is_closed


def test_an_unknown_api_is_refused() -> None:
    with pytest.raises(ValueError, match="dream-machine"):
        LumaAdapter("luma_key", api="photon")  # type: ignore[arg-type]


async def test_a_client_with_its_own_base_url_is_used_as_configured() -> None:
    vendor = Vendor(httpx.Response(201, json=generation("queued")))
    transport = httpx.MockTransport(vendor)
    client = httpx.AsyncClient(transport=transport, base_url="http://emulator:9000/api")
    adapter = LumaAdapter("luma_key", client=client)
    await adapter.submit(request())
    assert str(vendor.seen[0].url) == "http://emulator:9000/api/generations"
    await adapter.aclose()
