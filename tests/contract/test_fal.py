"""FalAdapter against scripted fal answers shaped as in the vendor reference (§6 queue API,
addendum §5 billable units): submit → poll through every state → result → download, each
error class, cancel, unknown states, malformed bodies and transport errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
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
from adapters.fal import (
    FalAdapter,
    classify,
    endpoint_for,
    parse_status,
    queue_path,
    to_payload,
)

KEY = "fal-key-123"
RID = "764cabcf-b745-4b3e-ae38-1200304cf45b"
QUEUE = "https://queue.fal.run"
PRICING = "https://api.fal.ai/v1/models/pricing"
VIDEO_URL = "https://v3.fal.media/files/penguin/out.mp4"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"frame" * 5000

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "fal-ai/wan/v2.2-a14b",
        "prompt": "A harbour at dawn, boats rocking",
        "duration_s": 5,
        "fps": 16,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return GenerationRequest(**{**fields, **overrides})


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


def queued(app: str, rid: str = RID) -> dict[str, Any]:
    base = f"{QUEUE}/{app}/requests/{rid}"
    return {
        "request_id": rid,
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
        "status": "IN_QUEUE",
        "queue_position": 0,
    }


def result(billable: str | None = "5") -> httpx.Response:
    body = {
        "video": {
            "url": VIDEO_URL,
            "content_type": "video/mp4",
            "file_name": "out.mp4",
            "file_size": len(VIDEO),
        },
        "seed": 42,
    }
    headers = {"x-fal-billable-units": billable} if billable is not None else {}
    return httpx.Response(200, json=body, headers=headers)


KLING = "fal-ai/kling-video/v2.1/master/image-to-video"
KLING_JOB = f"{KLING}#{RID}"
KLING_BASE = f"{QUEUE}/fal-ai/kling-video/requests/{RID}"  # the subpath is dropped


# --- the whole life of a job ----------------------------------------------------------------


async def test_submit_poll_every_state_then_download() -> None:
    prices = {"prices": [{"endpoint_id": KLING, "unit_price": 0.28, "unit": "video_second"}]}
    fal = Fal(
        {
            f"POST {QUEUE}/{KLING}": httpx.Response(200, json=queued("fal-ai/kling-video")),
            f"GET {KLING_BASE}/status": [
                httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 3}),
                httpx.Response(202, json={"status": "IN_PROGRESS", "logs": []}),
                httpx.Response(
                    200,
                    json={"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 80.2}},
                ),
            ],
            f"GET {KLING_BASE}": result(billable="5"),
            f"GET {PRICING}": httpx.Response(200, json=prices),
            f"GET {VIDEO_URL}": httpx.Response(200, content=VIDEO),
        }
    )
    fal_adapter = adapter(fal)
    first = "https://img.example/first.png"
    submission = await fal_adapter.submit(
        request(model="fal-ai/kling-video/v2.1/master", image=first)
    )
    assert submission.backend_job_id == KLING_JOB and submission.poll_after_s == 5.0
    create = fal.seen[0]
    assert (create.method, str(create.url)) == ("POST", f"{QUEUE}/{KLING}")
    assert create.headers["authorization"] == f"Key {KEY}"
    assert create.headers["content-type"] == "application/json"
    assert _json(create) == {
        "prompt": "A harbour at dawn, boats rocking",
        "duration": "5",
        "image_url": first,
    }

    states = [await fal_adapter.poll(submission.backend_job_id) for _ in range(3)]
    assert [(s.state, s.raw_state, s.queue_position) for s in states] == [
        ("queued", "IN_QUEUE", 3),
        ("running", "IN_PROGRESS", None),
        ("succeeded", "COMPLETED", None),
    ]
    done = states[-1]
    assert (done.output_url, done.progress, done.failure) == (VIDEO_URL, 1.0, None)
    assert done.cost_usd_micros == 1_400_000  # 5 billable units x $0.28
    assert all(s.next_poll_s == 5.0 for s in states[:2])
    pricing = fal.calls(f"GET {PRICING}")
    assert len(pricing) == 1 and pricing[0].url.params["endpoint_id"] == KLING
    assert all(r.headers["authorization"] == f"Key {KEY}" for r in fal.calls(f"GET {QUEUE}"))

    video = b"".join([c async for c in fal_adapter.download(submission.backend_job_id, done)])
    assert video == VIDEO
    cdn = fal.calls(f"GET {VIDEO_URL}")
    assert len(cdn) == 1 and "authorization" not in cdn[0].headers  # public CDN: no key sent


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


FAILED_STATUS = {
    "status": "COMPLETED",
    "logs": [],
    "metrics": {},
    "error": "Request failed",
    "error_type": "runner_disconnected",
}


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
            f"GET {KLING_BASE}": result(billable),
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


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"}),
        httpx.Response(400, json={"status": "ALREADY_COMPLETED"}),  # too late: nothing to do
    ],
)
async def test_cancel(answer: httpx.Response) -> None:
    fal = Fal({f"PUT {KLING_BASE}/cancel": answer})
    await adapter(fal).cancel(KLING_JOB)
    (call,) = fal.seen
    assert call.headers["authorization"] == f"Key {KEY}"


async def test_download_without_a_url_asks_for_the_result_again() -> None:
    fal = completed("1", **{f"GET {VIDEO_URL}": httpx.Response(200, content=VIDEO)})
    fal_adapter = adapter(fal, pricing_url=None)
    chunks = [c async for c in fal_adapter.download(KLING_JOB, JobStatus(state="succeeded"))]
    assert b"".join(chunks) == VIDEO


async def test_the_adapter_keeps_the_contract_and_closes_its_client() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(Fal({})), base_url=QUEUE)
    fal_adapter = FalAdapter(KEY, client=client)
    assert isinstance(fal_adapter, Adapter)
    assert (fal_adapter.name, fal_adapter.idempotent_submit, fal_adapter.supports_cancel) == (
        "fal",
        False,
        True,
    )
    assert fal_adapter.configured_models() is None
    await fal_adapter.aclose()
    assert client.is_closed


async def test_an_adapter_without_a_client_builds_one_on_the_base_url() -> None:
    fal_adapter = FalAdapter(KEY, base_url="http://emulator:9000/fal")
    assert str(fal_adapter._client.base_url) == "http://emulator:9000/fal/"
    await fal_adapter.aclose()


# --- errors ---------------------------------------------------------------------------------


def reply(status: int, **kw: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, **kw)


def raise_(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(req: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def model_error(kind: str, field: str, msg: str) -> dict[str, Any]:
    return {"detail": [{"loc": ["body", field], "msg": msg, "type": kind}]}


NGINX = "<html><center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center></html>"
LOCKED = {"detail": "User is locked. Reason: Exhausted balance. Top up your balance."}

ERRORS = [
    # op, answer, error class, code, retry_after, outcome_unknown
    (
        "submit",
        reply(429, json={"detail": "Too many requests"}, headers={"Retry-After": "7"}),
        RateLimited,
        "rate_limited",
        7.0,
        False,
    ),
    ("submit", reply(403, json=LOCKED), BackendFailure, "http_403", None, False),  # billing
    ("submit", reply(401, json={"detail": "Invalid Key"}), BackendFailure, "http_401", None, False),
    (
        "submit",
        reply(422, json=model_error("less_than_equal", "num_frames", "must be <= 161")),
        InvalidInput,
        "less_than_equal",
        None,
        False,
    ),
    ("submit", reply(400, json={"detail": "Invalid JSON"}), InvalidInput, "http_400", None, False),
    (
        "submit",
        reply(422, json=model_error("content_policy_violation", "prompt", "flagged")),
        ContentRejected,
        "content_policy_violation",
        None,
        False,
    ),
    (
        "submit",
        reply(404, json={"detail": "Application 'nope' not found"}),
        BackendFailure,
        "not_found",
        None,
        False,
    ),
    ("submit", reply(504, text=NGINX), RetryableError, "http_504", None, True),
    (
        "submit",
        reply(500, json={"detail": "Internal error"}),
        RetryableError,
        "http_500",
        None,
        False,
    ),
    ("submit", reply(200, text="{not json"), RetryableError, "malformed", None, True),
    ("submit", reply(200, json=["a list"]), RetryableError, "malformed", None, True),
    ("submit", reply(200, json={"status": "IN_QUEUE"}), RetryableError, "malformed", None, True),
    ("submit", raise_(httpx.ConnectError("refused")), RetryableError, "unreachable", None, False),
    ("submit", raise_(httpx.ReadTimeout("slow")), RetryableError, "timeout", None, True),
    (
        "poll",
        reply(404, json={"detail": "Request not found"}),
        BackendJobLost,
        "not_found",
        None,
        False,
    ),
    (
        "poll",
        reply(
            503,
            json={"detail": "Runner disconnected", "error_type": "runner_disconnected"},
            headers={"Retry-After": "2"},
        ),
        RetryableError,
        "runner_disconnected",
        2.0,
        False,
    ),
    (
        "poll",
        reply(408, json={"detail": "Request timeout"}),
        RetryableError,
        "http_408",
        None,
        False,
    ),
    ("poll", reply(200, json={"status": "PAUSED"}), BackendFailure, "unknown_state", None, False),
    ("poll", reply(200, text="{not json"), RetryableError, "malformed", None, False),
    ("poll", raise_(httpx.ReadError("reset")), RetryableError, "unreachable", None, True),
    (
        "cancel",
        reply(404, json={"detail": "Request not found"}),
        BackendJobLost,
        "not_found",
        None,
        False,
    ),
    ("download", reply(404, text="Not Found"), BackendFailure, "not_found", None, False),
    ("download", reply(502, text="bad gateway"), RetryableError, "http_502", None, False),
    ("download", raise_(httpx.ReadError("reset")), RetryableError, "unreachable", None, True),
]


async def call(fal_adapter: FalAdapter, op: str) -> Any:
    if op == "submit":
        return await fal_adapter.submit(request(model="fal-ai/kling-video/v2.1/master"))
    if op == "poll":
        return await fal_adapter.poll(KLING_JOB)
    if op == "cancel":
        return await fal_adapter.cancel(KLING_JOB)
    done = JobStatus(state="succeeded", output_url=VIDEO_URL)
    return b"".join([c async for c in fal_adapter.download(KLING_JOB, done)])


@pytest.mark.parametrize(("op", "answer", "error", "code", "wait", "unknown"), ERRORS)
async def test_errors_are_classified(
    op: str,
    answer: Callable[[httpx.Request], httpx.Response],
    error: type[AdapterError],
    code: str,
    wait: float | None,
    unknown: bool,
) -> None:
    routes: dict[str, Answer | list[Answer]] = {
        f"POST {QUEUE}/fal-ai/kling-video/v2.1/master/text-to-video": answer,
        f"GET {KLING_BASE}/status": answer,
        f"PUT {KLING_BASE}/cancel": answer,
        f"GET {VIDEO_URL}": answer,
    }
    with pytest.raises(AdapterError) as caught:
        await call(adapter(Fal(routes)), op)
    err = caught.value
    assert type(err) is error, err
    assert (err.code, err.retry_after) == (code, wait)
    assert err.outcome_unknown is unknown
    assert err.retryable is issubclass(error, RetryableError)


def test_a_model_error_names_the_field() -> None:
    response = httpx.Response(422, json=model_error("less_than_equal", "num_frames", "<= 161"))
    assert "num_frames: <= 161" in classify(response).message
