"""RunwayAdapter beyond the shared contract (``test_contract.py``, ``vendor_cases/runway.py``):
per-model create bodies, Runway's pixel ratios, failure codes, refreshed output links.

Shapes: runwayml/sdk-python 5.13.0 (``types/task_retrieve_response.py``, the create
params and response) and docs.dev.runwayml.com (errors, task failures, usage tiers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from vendor_cases.base import Vendor
from vendor_cases.runway import API, TASK, VIDEO_URL, error, request, task

from adapters.base import BackendFailure, BackendJobLost, InvalidInput, JobStatus
from adapters.runway import RunwayAdapter, parse_status, to_payload


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


# --- submit -------------------------------------------------------------------------------


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


# --- download -----------------------------------------------------------------------------


async def fetch(adapter: RunwayAdapter, status: JobStatus) -> list[bytes]:
    return [chunk async for chunk in adapter.download(TASK, status)]


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
