"""FalAdapter beyond the shared contract (``test_contract.py``, ``vendor_cases/fal.py``):
per-family inputs and endpoints, queue paths, failed requests, billable-unit cost.

Shapes: the vendor reference (§6 queue API, addendum §5 billable units).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from vendor_cases.fal import (
    FAILED_STATUS,
    KEY,
    KLING,
    KLING_BASE,
    KLING_JOB,
    PRICING,
    QUEUE,
    RID,
    VIDEO_URL,
    model_error,
    queued,
    request,
    result,
)

from adapters.base import BackendFailure, BackendJobLost, InvalidInput, JobStatus
from adapters.fal import FalAdapter, classify, endpoint_for, parse_status, queue_path, to_payload

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"frame" * 5000

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class Fal:
    """Scripted fal: answers per ``METHOD url`` in order (the last one repeats), records all."""

    def __init__(self, routes: dict[str, Answer | list[Answer]]) -> None:
        self.routes = {k: v if isinstance(v, list) else [v] for k, v in routes.items()}
        self.seen: list[httpx.Request] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.seen.append(req)
        key = f"{req.method} {req.url.copy_with(query=None)}"
        if key not in self.routes:
            return httpx.Response(599, text=f"unscripted {key}")
        answers = self.routes[key]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(req) if callable(answer) else answer

    def calls(self, prefix: str) -> list[httpx.Request]:
        return [r for r in self.seen if f"{r.method} {r.url}".startswith(prefix)]


def adapter(fal: Fal, **kw: Any) -> FalAdapter:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fal), base_url=QUEUE)
    return FalAdapter(KEY, client=client, **kw)


# --- submit ---------------------------------------------------------------------------------


def _json(req: httpx.Request) -> Any:
    return json.loads(req.content)


async def test_submit_sends_the_exact_wan_request_with_the_webhook() -> None:
    fal = Fal(
        {
            f"POST {QUEUE}/fal-ai/wan/v2.2-a14b/text-to-video": httpx.Response(
                200, json=queued("fal-ai/wan")
            )
        }
    )
    hook = "https://gw.example/hooks/fal?attempt=att_1"
    shot = request(negative_prompt="blur", seed=7, callback_url=hook, resolution="480p")
    submission = await adapter(fal).submit(shot)
    assert submission.backend_job_id == f"fal-ai/wan/v2.2-a14b/text-to-video#{RID}"
    (create,) = fal.seen
    assert create.method == "POST"
    assert create.url.path == "/fal-ai/wan/v2.2-a14b/text-to-video"
    assert dict(create.url.params) == {"fal_webhook": hook}
    assert create.headers["authorization"] == f"Key {KEY}"
    assert _json(create) == {
        "prompt": "A harbour at dawn, boats rocking",
        "negative_prompt": "blur",
        "seed": 7,
        "num_frames": 81,
        "frames_per_second": 16,
        "resolution": "480p",
        "aspect_ratio": "16:9",
    }


async def test_a_submit_without_a_callback_sends_no_query() -> None:
    fal = Fal(
        {
            f"POST {QUEUE}/fal-ai/wan/v2.2-a14b/text-to-video": httpx.Response(
                200, json=queued("fal-ai/wan")
            )
        }
    )
    await adapter(fal).submit(request())
    assert fal.seen[0].url.query == b""


# --- payloads per family --------------------------------------------------------------------

IMG, LAST, DATA = (
    "https://img.example/a.png",
    "https://img.example/z.png",
    "data:image/png;base64,iVBO",
)
PROMPT = "A harbour at dawn, boats rocking"

PAYLOADS = [
    (
        {
            "model": "fal-ai/veo3.1",
            "duration_s": 8,
            "audio": True,
            "resolution": "1080p",
            "seed": 3,
            "negative_prompt": "text",
        },
        "fal-ai/veo3.1",
        {
            "prompt": PROMPT,
            "negative_prompt": "text",
            "seed": 3,
            "aspect_ratio": "16:9",
            "duration": "8s",
            "resolution": "1080p",
            "generate_audio": True,
        },
    ),
    (
        {"model": "fal-ai/veo3.1/fast", "duration_s": 6, "image": IMG, "aspect_ratio": "9:16"},
        "fal-ai/veo3.1/fast/image-to-video",
        {
            "prompt": PROMPT,
            "aspect_ratio": "9:16",
            "duration": "6s",
            "resolution": "720p",
            "generate_audio": False,
            "image_url": IMG,
        },
    ),
    (
        {"model": "fal-ai/veo3.1", "duration_s": 8, "image": IMG, "last_frame": LAST},
        "fal-ai/veo3.1/first-last-frame-to-video",
        {
            "prompt": PROMPT,
            "aspect_ratio": "16:9",
            "duration": "8s",
            "resolution": "720p",
            "generate_audio": False,
            "first_frame_url": IMG,
            "last_frame_url": LAST,
        },
    ),
    (
        {
            "model": "fal-ai/kling-video/v2.1/master",
            "duration_s": 10,
            "negative_prompt": "blur",
            "seed": 9,
        },
        "fal-ai/kling-video/v2.1/master/text-to-video",
        {"prompt": PROMPT, "negative_prompt": "blur", "duration": "10", "aspect_ratio": "16:9"},
    ),
    (
        {
            "model": "fal-ai/kling-video/v3/pro",
            "duration_s": 12,
            "audio": True,
            "image": IMG,
            "last_frame": LAST,
        },
        "fal-ai/kling-video/v3/pro/image-to-video",
        {
            "prompt": PROMPT,
            "duration": "12",
            "start_image_url": IMG,
            "end_image_url": LAST,
            "generate_audio": True,
        },
    ),
    (
        {"model": "fal-ai/wan/v2.2-a14b", "image": DATA, "duration_s": 3, "aspect_ratio": "1:1"},
        "fal-ai/wan/v2.2-a14b/image-to-video",
        {
            "prompt": PROMPT,
            "num_frames": 49,
            "frames_per_second": 16,
            "resolution": "720p",
            "aspect_ratio": "1:1",
            "image_url": DATA,
        },
    ),
    (
        {"model": "fal-ai/ltx-video-13b-dev", "fps": 30, "duration_s": 4, "seed": 1},
        "fal-ai/ltx-video-13b-dev",
        {
            "prompt": PROMPT,
            "seed": 1,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "num_frames": 121,
            "frame_rate": 30,
        },
    ),
    (
        {"model": "fal-ai/ltx-video-13b-dev", "fps": 30, "duration_s": 4, "image": IMG},
        "fal-ai/ltx-video-13b-dev/image-to-video",
        {
            "prompt": PROMPT,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "num_frames": 121,
            "frame_rate": 30,
            "image_url": IMG,
        },
    ),
    (
        {"model": "fal-ai/ltx-2", "fps": 25, "duration_s": 6, "resolution": "1080p", "audio": True},
        "fal-ai/ltx-2/text-to-video",
        {
            "prompt": PROMPT,
            "duration": 6,
            "resolution": "1080p",
            "aspect_ratio": "16:9",
            "fps": 25,
            "generate_audio": True,
        },
    ),
    (  # an id that already names its mode is used verbatim
        {"model": "fal-ai/kling-video/v2.1/master/text-to-video/"},
        "fal-ai/kling-video/v2.1/master/text-to-video",
        {"prompt": PROMPT, "duration": "5", "aspect_ratio": "16:9"},
    ),
    (  # any other endpoint: the generic names
        {"model": "bytedance/seedance-2.0/image-to-video", "image": IMG, "audio": True},
        "bytedance/seedance-2.0/image-to-video",
        {
            "prompt": PROMPT,
            "duration": "5",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "generate_audio": True,
            "image_url": IMG,
        },
    ),
]


@pytest.mark.parametrize(("fields", "endpoint", "body"), PAYLOADS)
def test_to_payload_maps_each_family(
    fields: dict[str, Any], endpoint: str, body: dict[str, Any]
) -> None:
    assert to_payload(request(**fields)) == (endpoint, body)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"image": IMG, "last_frame": LAST}, "no first+last frame endpoint"),
        ({"last_frame": LAST}, "last_frame needs image"),
        ({"image": "ftp://img.example/a.png"}, "image must be an http(s) URL or a data: URI"),
        ({"model": "fal-ai/veo3.1", "image": "/tmp/a.png"}, "image must be an http(s) URL"),
    ],
)
def test_inputs_fal_cannot_take_are_invalid(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(says)):
        to_payload(request(**fields))


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [
        ("fal-ai/kling-video/v2.1/master/text-to-video", "fal-ai/kling-video"),
        ("fal-ai/veo3.1/fast/image-to-video", "fal-ai/veo3.1"),
        ("fal-ai/ltx-video-13b-dev", "fal-ai/ltx-video-13b-dev"),
        ("workflows/acme/storyboard/run", "workflows/acme/storyboard"),
    ],
)
def test_queue_paths_drop_the_subpath(endpoint: str, path: str) -> None:
    assert queue_path(endpoint) == path


@pytest.mark.parametrize("job", ["no-separator", f"fal-ai#{RID}", "fal-ai/wan/v2.2-a14b#"])
async def test_a_job_id_that_names_no_request_is_lost(job: str) -> None:
    fal = Fal({})
    with pytest.raises(BackendJobLost) as caught:
        await adapter(fal).poll(job)
    assert caught.value.code == "bad_job_id" and not fal.seen


def test_endpoint_for_a_family_id_follows_the_mode() -> None:
    assert endpoint_for(request()) == "fal-ai/wan/v2.2-a14b/text-to-video"
    assert endpoint_for(request(image=IMG)) == "fal-ai/wan/v2.2-a14b/image-to-video"


# --- states and failures --------------------------------------------------------------------


def test_parse_status_is_lossless() -> None:
    assert parse_status({"status": "IN_QUEUE", "queue_position": 0}).queue_position == 0
    with pytest.raises(BackendFailure) as caught:
        parse_status({"status": "CANCELLED"})
    assert caught.value.code == "unknown_state"
    with pytest.raises(BackendFailure):
        parse_status({"queue_position": 2})


@pytest.mark.parametrize(
    ("answer", "code", "klass"),
    [
        (  # the model refused the content: no other vendor will take it either
            httpx.Response(
                422,
                json={
                    "detail": [
                        {
                            "loc": ["body", "prompt"],
                            "msg": "The content was flagged by the safety checker",
                            "type": "content_policy_violation",
                        }
                    ]
                },
            ),
            "content_policy_violation",
            "fatal",
        ),
        (
            httpx.Response(
                422,
                json={
                    "detail": [
                        {
                            "loc": ["body", "image_url"],
                            "msg": "Image too small",
                            "type": "image_too_small",
                        }
                    ]
                },
            ),
            "image_too_small",
            "fatal",
        ),
        (  # an infrastructure failure fal already retried: try another vendor
            httpx.Response(
                503,
                json={"detail": "Runner disconnected", "error_type": "runner_disconnected"},
                headers={"x-fal-request-id": RID},
            ),
            "runner_disconnected",
            "fallback",
        ),
    ],
)
async def test_a_completed_request_with_an_error_is_a_failed_job(
    answer: httpx.Response, code: str, klass: str
) -> None:
    fal = Fal(
        {
            f"GET {KLING_BASE}/status": httpx.Response(200, json=FAILED_STATUS),
            f"GET {KLING_BASE}": answer,
        }
    )
    status = await adapter(fal).poll(KLING_JOB)
    assert (status.state, status.raw_state) == ("failed", "COMPLETED")
    assert status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == (code, klass)


async def test_a_result_without_a_video_is_a_failed_job() -> None:
    fal = Fal(
        {
            f"GET {KLING_BASE}/status": httpx.Response(200, json={"status": "COMPLETED"}),
            f"GET {KLING_BASE}": httpx.Response(200, json={"images": []}),
        }
    )
    status = await adapter(fal, pricing_url=None).poll(KLING_JOB)
    assert status.state == "failed" and status.failure is not None
    assert status.failure.code == "no_output"


# --- cost -----------------------------------------------------------------------------------


def completed(billable: str | None, **extra: Answer) -> Fal:
    return Fal(
        {
            f"GET {KLING_BASE}/status": httpx.Response(200, json={"status": "COMPLETED"}),
            f"GET {KLING_BASE}": result(billable)(),
            **extra,
        }
    )


async def test_a_given_unit_price_needs_no_lookup() -> None:
    fal = completed("2.5")
    status = await adapter(fal, unit_prices_usd={KLING: Decimal("0.28")}).poll(KLING_JOB)
    assert status.cost_usd_micros == 700_000
    assert not fal.calls(f"GET {PRICING}")


async def test_the_price_is_looked_up_once_per_endpoint() -> None:
    prices = {"prices": [{"endpoint_id": KLING, "unit_price": "0.1", "currency": "USD"}]}
    fal = completed("3", **{f"GET {PRICING}": httpx.Response(200, json=prices)})
    fal_adapter = adapter(fal)
    assert (await fal_adapter.poll(KLING_JOB)).cost_usd_micros == 300_000
    assert (await fal_adapter.poll(KLING_JOB)).cost_usd_micros == 300_000
    assert len(fal.calls(f"GET {PRICING}")) == 1


@pytest.mark.parametrize(
    ("billable", "pricing", "kw"),
    [
        ("5", httpx.Response(500, text="oops"), {}),  # lookup failed: unknown, not zero
        ("5", httpx.Response(200, json={"prices": []}), {}),
        (
            "5",
            httpx.Response(
                200, json={"prices": [{"endpoint_id": KLING, "unit_price": 1, "currency": "EUR"}]}
            ),
            {},
        ),
        (None, httpx.Response(200, json={"prices": []}), {}),  # no billable-units header
        ("5", httpx.Response(200, json={}), {"pricing_url": None}),  # lookups switched off
    ],
)
async def test_without_a_usd_unit_price_the_cost_is_unknown(
    billable: str | None, pricing: httpx.Response, kw: dict[str, Any]
) -> None:
    fal = completed(billable, **{f"GET {PRICING}": pricing})
    status = await adapter(fal, **kw).poll(KLING_JOB)
    assert (status.state, status.cost_usd_micros) == ("succeeded", None)
    if "pricing_url" in kw:
        assert not fal.calls(f"GET {PRICING}")


async def test_a_pricing_lookup_that_cannot_connect_leaves_the_cost_unknown() -> None:
    def down(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route")

    status = await adapter(completed("5", **{f"GET {PRICING}": down})).poll(KLING_JOB)
    assert (status.state, status.cost_usd_micros) == ("succeeded", None)


# --- cancel and download --------------------------------------------------------------------


async def test_a_cancel_that_comes_too_late_is_no_error() -> None:
    fal = Fal(
        {f"PUT {KLING_BASE}/cancel": httpx.Response(400, json={"status": "ALREADY_COMPLETED"})}
    )
    await adapter(fal).cancel(KLING_JOB)
    (call,) = fal.seen
    assert call.headers["authorization"] == f"Key {KEY}"


async def test_download_without_a_url_asks_for_the_result_again() -> None:
    fal = completed("1", **{f"GET {VIDEO_URL}": httpx.Response(200, content=VIDEO)})
    fal_adapter = adapter(fal, pricing_url=None)
    chunks = [c async for c in fal_adapter.download(KLING_JOB, JobStatus(state="succeeded"))]
    assert b"".join(chunks) == VIDEO


async def test_aclose_closes_the_client() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(Fal({})), base_url=QUEUE)
    await FalAdapter(KEY, client=client).aclose()
    assert client.is_closed


async def test_an_adapter_without_a_client_builds_one_on_the_base_url() -> None:
    fal_adapter = FalAdapter(KEY, base_url="http://emulator:9000/fal")
    assert str(fal_adapter._client.base_url) == "http://emulator:9000/fal/"
    await fal_adapter.aclose()


# --- errors ---------------------------------------------------------------------------------


def test_a_model_error_names_the_field() -> None:
    response = httpx.Response(422, json=model_error("less_than_equal", "num_frames", "<= 161"))
    assert "num_frames: <= 161" in classify(response).message
