"""LumaAdapter beyond the shared contract (``test_contract.py``, ``vendor_cases/luma.py``):
frames as URLs or inline data, failure codes, refreshed output links, the base URL.

Shapes: lumalabs/luma-agents-python 0.3.0 (``types/generation.py``, the create params),
docs.agents.lumalabs.ai (error handling, rate limits) and, for the legacy Dream Machine
API, lumalabs/lumaai-python (``types/generation.py``, ``resources/generations/video.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from vendor_cases.base import Vendor
from vendor_cases.luma import (
    AGENTS,
    DREAM,
    GEN,
    VALIDATION,
    VIDEO_URL,
    dream,
    error,
    generation,
    request,
)

from adapters.base import BackendFailure, BackendJobLost, InvalidInput, JobStatus, RetryableError
from adapters.luma import (
    LumaAdapter,
    parse_status,
    to_dream_machine_payload,
    to_payload,
    wire_for,
)


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


async def test_an_agents_model_goes_to_the_agents_api_with_the_request_id(make: Any) -> None:
    vendor = Vendor(httpx.Response(201, json=generation("queued")))
    adapter = make(vendor)
    assert adapter.api == "auto"
    await adapter.submit(request())
    assert str(vendor.seen[0].url) == f"{AGENTS}/generations"
    assert vendor.seen[0].headers["x-request-id"] == "att_1"  # echoed in Luma's logs


@pytest.mark.parametrize(
    ("model", "wire"),
    [
        ("ray-2", "dream-machine"),
        ("ray-flash-2", "dream-machine"),
        ("ray-1-6", "dream-machine"),
        ("ray-3.2", "agents"),
        ("uni-1", "agents"),
    ],
)
def test_each_model_has_its_api(model: str, wire: str) -> None:
    assert wire_for(model) == wire


async def test_one_adapter_speaks_both_apis_by_model(make: Any) -> None:
    """By default ray-2 goes to Dream Machine and ray-3.2 to the Agents API, each on its
    own host; the Agents job id says so (a bare id is Dream Machine's, as before the
    Agents API was the default), and each poll goes back to its API."""
    vendor = Vendor(
        httpx.Response(201, json=dream("queued")),
        httpx.Response(201, json=generation("queued")),
        httpx.Response(200, json=dream("dreaming")),
        httpx.Response(200, json=generation("processing")),
    )
    adapter = make(vendor)
    legacy = await adapter.submit(request(model="ray-2"))
    current = await adapter.submit(request())
    assert (legacy.backend_job_id, current.backend_job_id) == (GEN, f"agents:{GEN}")
    assert (await adapter.poll(legacy.backend_job_id)).raw_state == "dreaming"
    assert (await adapter.poll(current.backend_job_id)).raw_state == "processing"
    assert [str(r.url) for r in vendor.seen] == [
        f"{DREAM}/generations/video",
        f"{AGENTS}/generations",
        f"{DREAM}/generations/{GEN}",
        f"{AGENTS}/generations/{GEN}",
    ]
    assert "x-request-id" not in vendor.seen[0].headers


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


# --- download -----------------------------------------------------------------------------


#: An Agents generation's job id under the default ``api="auto"``.
AGENTS_JOB = f"agents:{GEN}"


async def fetch(adapter: LumaAdapter, status: JobStatus) -> list[bytes]:
    return [chunk async for chunk in adapter.download(AGENTS_JOB, status)]


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


async def test_billing_is_not_retried_but_falls_back(make: Any) -> None:
    with pytest.raises(BackendFailure) as caught:
        await make(Vendor(error(402, "Insufficient balance"))).submit(request())
    assert caught.value.failure_class == "fallback" and not caught.value.retryable


async def test_a_validation_error_names_the_field(make: Any) -> None:
    with pytest.raises(InvalidInput, match=r"body\.video\.duration: must be 5s or 10s"):
        await make(Vendor(error(422, VALIDATION))).submit(request())


# --- Dream Machine API (legacy) -----------------------------------------------------------


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
    """A base URL given serves both APIs (the emulator serves them side by side)."""
    vendor = Vendor(
        httpx.Response(201, json=generation("queued")), httpx.Response(201, json=dream("queued"))
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    adapter = LumaAdapter("luma_key", base_url="http://emulator:9000/v1/", client=client)
    await adapter.submit(request())
    await adapter.submit(request(model="ray-2"))
    assert [str(r.url) for r in vendor.seen] == [
        "http://emulator:9000/v1/generations",
        "http://emulator:9000/v1/generations/video",
    ]
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
