"""KlingAdapter against scripted answers shaped as Kling documents them.

Shapes: the copy of Kling's API docs named in ``vendors.md`` §5 (create and query
envelopes, ``task_status`` values, the HTTP status / ``code`` error table, JWT claims).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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
from adapters.kling import KlingAdapter, parse_status, sign_jwt, to_payload

API = "https://api-singapore.klingai.com"
AK, SK = "ak_test", "sk_test"
NOW = 1_760_000_000.0
TASK = "CjhDdGhvZG9n"
VIDEO_URL = "https://cdn.klingai.test/bs2/upload-kling-api/video.mp4"


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "kling-v2-1-master",
        "prompt": "A harbour at dawn, the camera pans left",
        "negative_prompt": "blur",
        "duration_s": 5,
        "fps": 24,
        "width": 1920,
        "height": 1080,
        "aspect_ratio": "16:9",
        "resolution": "1080p",
    }
    return GenerationRequest(**{**fields, **overrides})


def envelope(data: dict[str, Any] | None, code: int = 0, message: str = "SUCCEED") -> Any:
    return {"code": code, "message": message, "request_id": "req-1", "data": data}


def task(status: str, **extra: Any) -> dict[str, Any]:
    data = {
        "task_id": TASK,
        "task_status": status,
        "task_info": {"external_task_id": "att_1"},
        "created_at": 1722769557708,
        "updated_at": 1722769557708,
        **extra,
    }
    return envelope(data)


SUCCEED = task(
    "succeed",
    task_status_msg="",
    final_unit_deduction="1",
    task_result={
        "videos": [
            {"id": "v1", "url": VIDEO_URL, "watermark_url": VIDEO_URL + "?wm", "duration": "5"}
        ]
    },
)


def refusal(status: int, code: int, message: str = "it went wrong", **headers: str) -> Any:
    return httpx.Response(status, json=envelope(None, code, message), headers=headers)


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


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[KlingAdapter] = []

    def build(vendor: Vendor, clock: Clock | None = None, **kw: Any) -> KlingAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(vendor), base_url=API)
        made.append(KlingAdapter(f"{AK}:{SK}", client=client, clock=clock or Clock(), **kw))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


def claims_of(req: httpx.Request) -> dict[str, Any]:
    """Verify the bearer JWT's HS256 signature with the secret key; return its claims."""
    scheme, _, token = req.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    head, body, sig = token.split(".")
    expected = hmac.new(SK.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)) == expected
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


async def read(adapter: KlingAdapter, job: str, status: JobStatus) -> bytes:
    return b"".join([chunk async for chunk in adapter.download(job, status)])


# --- the happy paths ----------------------------------------------------------------------


async def test_text2video_submit_poll_download(make: Any) -> None:
    vendor = Vendor(
        httpx.Response(200, json=task("submitted")),
        httpx.Response(200, json=task("submitted")),
        httpx.Response(200, json=task("processing")),
        httpx.Response(200, json=SUCCEED),
        httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000),
    )
    adapter = make(vendor)
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.idempotent_submit, adapter.supports_cancel) == (
        "kling",
        True,
        False,
    )
    assert adapter.configured_models() is None

    submission = await adapter.submit(request())
    assert submission.backend_job_id == f"text2video/{TASK}"
    post = vendor.seen[0]
    assert (post.method, post.url.path) == ("POST", "/v1/videos/text2video")
    assert claims_of(post) == {"iss": AK, "exp": int(NOW) + 1800, "nbf": int(NOW) - 5}
    assert vendor.body(0) == {
        "model_name": "kling-v2-1-master",
        "prompt": "A harbour at dawn, the camera pans left",
        "negative_prompt": "blur",
        "duration": "5",
        "aspect_ratio": "16:9",
        "external_task_id": "att_1",
    }

    seen = [await adapter.poll(submission.backend_job_id) for _ in range(3)]
    assert [(s.state, s.raw_state) for s in seen] == [
        ("queued", "submitted"),
        ("running", "processing"),
        ("succeeded", "succeed"),
    ]
    assert all(s.next_poll_s == 5.0 and s.cost_usd_micros is None for s in seen)
    assert seen[-1].output_url == VIDEO_URL
    assert {(r.method, r.url.path) for r in vendor.seen[1:4]} == {
        ("GET", f"/v1/videos/text2video/{TASK}")
    }

    video = await read(adapter, submission.backend_job_id, seen[-1])
    assert video == b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000
    cdn = vendor.seen[-1]
    assert str(cdn.url) == VIDEO_URL and "authorization" not in cdn.headers


async def test_image2video_sends_raw_base64_and_polls_its_own_path(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, json=task("submitted")), httpx.Response(200, json=SUCCEED))
    adapter = make(vendor)
    png = base64.b64encode(b"\x89PNG fake").decode()
    job = await adapter.submit(
        request(
            model="kling-v2-1",
            resolution="720p",
            audio=True,
            image=f"data:image/png;base64,{png}",
            last_frame="https://example.test/last.jpg",
            callback_url="https://gateway.test/hooks/kling",
        )
    )
    assert job.backend_job_id == f"image2video/{TASK}"
    assert vendor.seen[0].url.path == "/v1/videos/image2video"
    assert vendor.body(0) == {
        "model_name": "kling-v2-1",
        "prompt": "A harbour at dawn, the camera pans left",
        "negative_prompt": "blur",
        "duration": "5",
        "mode": "std",
        "sound": "on",
        "callback_url": "https://gateway.test/hooks/kling",
        "image": png,
        "image_tail": "https://example.test/last.jpg",
        "external_task_id": "att_1",
    }
    assert (await adapter.poll(job.backend_job_id)).state == "succeeded"
    assert vendor.seen[1].url.path == f"/v1/videos/image2video/{TASK}"


@pytest.mark.parametrize(
    ("model", "resolution", "mode"),
    [("kling-v2-5-turbo", "1080p", "pro"), ("kling-v1-6", "720p", "std"), ("kling-v3", "4k", None)],
)
def test_mode_follows_the_resolution_except_for_master_models(
    model: str, resolution: str, mode: str | None
) -> None:
    _, body = to_payload(request(model=model, resolution=resolution))
    assert body.get("mode") == mode


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image": "ftp://example.test/a.png"}, "image: Kling takes"),
        ({"image": "data:image/png,not-base64"}, "image: Kling takes"),
        ({"last_frame": "https://example.test/b.png"}, "last_frame needs a first frame"),
        ({"duration_s": 5.5}, "whole seconds"),
    ],
)
def test_inputs_kling_cannot_take_are_refused_before_sending(
    overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        to_payload(request(**overrides))


def test_a_failed_task_is_data_that_falls_back() -> None:
    status = parse_status(task("failed", task_status_msg="Failure to pass the risk control"))
    assert (status.state, status.raw_state) == ("failed", "failed")
    assert status.failure is not None
    assert status.failure.failure_class == "fallback"
    assert status.failure.message == "Failure to pass the risk control"


# --- auth ---------------------------------------------------------------------------------


def test_the_jwt_is_hs256_over_iss_exp_nbf() -> None:
    token = sign_jwt(AK, SK, NOW)
    req = httpx.Request("GET", API, headers={"Authorization": f"Bearer {token}"})
    assert claims_of(req) == {"iss": AK, "exp": int(NOW) + 1800, "nbf": int(NOW) - 5}


async def test_the_token_is_reused_then_re_signed_before_it_expires(make: Any) -> None:
    clock = Clock()
    vendor = Vendor(*[httpx.Response(200, json=task("processing")) for _ in range(3)])
    adapter = make(vendor, clock)
    await adapter.poll(f"text2video/{TASK}")
    clock.now += 1400  # 400 s of validity left: reused
    await adapter.poll(f"text2video/{TASK}")
    clock.now += 200  # 200 s left: re-signed
    await adapter.poll(f"text2video/{TASK}")
    exps = [claims_of(r)["exp"] for r in vendor.seen]
    assert exps == [int(NOW) + 1800, int(NOW) + 1800, int(NOW) + 1600 + 1800]


async def test_an_expired_token_is_retryable_and_dropped(make: Any) -> None:
    clock = Clock()
    vendor = Vendor(
        refusal(401, 1004, "token expired"), httpx.Response(200, json=task("submitted"))
    )
    adapter = make(vendor, clock)
    with pytest.raises(RetryableError) as caught:
        await adapter.submit(request())
    assert (caught.value.code, caught.value.outcome_unknown) == ("token_expired", False)
    clock.now += 10
    await adapter.submit(request())
    assert claims_of(vendor.seen[1])["exp"] == int(NOW) + 10 + 1800


async def test_keys_come_as_access_colon_secret_or_apart() -> None:
    adapter = KlingAdapter(AK, secret_key=SK, client=httpx.AsyncClient())
    req = httpx.Request("GET", API, headers={"Authorization": adapter._bearer()})
    assert claims_of(req)["iss"] == AK
    await adapter.aclose()
    with pytest.raises(ValueError, match="ACCESS_KEY:SECRET_KEY"):
        KlingAdapter("only-one-key", client=httpx.AsyncClient())


# --- dedup --------------------------------------------------------------------------------


async def test_a_resubmit_refused_as_a_duplicate_returns_the_first_job(make: Any) -> None:
    vendor = Vendor(
        refusal(400, 1201, "external_task_id already exists"),
        httpx.Response(200, json=task("processing")),
    )
    job = await make(vendor).submit(request())
    assert job.backend_job_id == f"text2video/{TASK}"
    lookup = vendor.seen[1]
    assert (lookup.method, lookup.url.path) == ("GET", "/v1/videos/text2video/att_1")


async def test_a_bad_request_with_no_earlier_job_stays_a_bad_request(make: Any) -> None:
    vendor = Vendor(refusal(400, 1201, "duration invalid"), refusal(404, 1203, "not found"))
    with pytest.raises(InvalidInput, match="duration invalid"):
        await make(vendor).submit(request())


# --- errors -------------------------------------------------------------------------------


async def call(adapter: KlingAdapter, op: str) -> Any:
    job = f"text2video/{TASK}"
    if op == "submit":
        return await adapter.submit(request())
    if op == "poll":
        return await adapter.poll(job)
    if op == "cancel":
        return await adapter.cancel(job)
    return await read(adapter, job, JobStatus(state="succeeded", output_url=VIDEO_URL))


ERRORS = [
    ("submit", refusal(429, 1302, "rate", **{"Retry-After": "7"}), RateLimited, "rate_limited", 7),
    (
        "submit",
        refusal(429, 1303, "parallel task over limit"),
        RateLimited,
        "concurrency_limited",
        1,
    ),
    ("submit", refusal(429, 1100, "account exception"), BackendFailure, "billing", None),
    ("submit", refusal(429, 1101, "account in arrears"), BackendFailure, "billing", None),
    ("submit", refusal(429, 1102, "resource pack depleted"), BackendFailure, "billing", None),
    ("submit", refusal(429, 1304, "ip whitelist"), BackendFailure, "ip_not_allowed", None),
    ("submit", httpx.Response(429, text="slow down"), RateLimited, "rate_limited", None),
    ("submit", refusal(500, 5000, "internal"), RetryableError, "server_error", None),
    ("poll", refusal(503, 5001, "maintenance"), RetryableError, "server_error", None),
    ("poll", refusal(504, 5002, "backlog"), RetryableError, "server_error", None),
    (
        "poll",
        httpx.Response(502, text="<html>bad gateway</html>"),
        RetryableError,
        "server_error",
        None,
    ),
    (
        "poll",
        httpx.Response(200, json=envelope(None, 5000, "x")),
        RetryableError,
        "server_error",
        None,
    ),
    ("submit", refusal(400, 1300, "platform policy"), ContentRejected, "content_rejected", None),
    ("submit", refusal(400, 1301, "content safety"), ContentRejected, "content_rejected", None),
    ("submit", refusal(401, 1000, "auth failed"), BackendFailure, "auth_failed", None),
    ("submit", refusal(403, 1103, "no model permission"), BackendFailure, "no_permission", None),
    ("submit", refusal(404, 1203, "model not found"), BackendFailure, "not_found", None),
    ("poll", refusal(404, 1203, "task not found"), BackendJobLost, "not_found", None),
    ("poll", refusal(400, 1201, "task_id invalid"), BackendJobLost, "not_found", None),
    ("download", httpx.Response(404, text="NoSuchKey"), BackendJobLost, "not_found", None),
    ("download", httpx.Response(503), RetryableError, "server_error", None),
    ("poll", httpx.Response(200, json=task("paused")), BackendFailure, "unknown_state", None),
    ("poll", httpx.Response(200, text="{not json"), RetryableError, "malformed", None),
    ("poll", httpx.Response(200, json=task("succeed")), RetryableError, "malformed", None),
    (
        "submit",
        httpx.Response(200, json=envelope({"task_status": "submitted"})),
        RetryableError,
        "malformed",
        None,
    ),
    ("cancel", None, BackendFailure, "cancel_unsupported", None),
]


@pytest.mark.parametrize(("op", "answer", "error", "code", "after"), ERRORS)
async def test_errors_are_classified_once(
    make: Any, op: str, answer: Any, error: type[AdapterError], code: str, after: float | None
) -> None:
    # a submit refused as bad input looks its external_task_id up once: not found
    not_found = refusal(404, 1203, "task not found")
    vendor = Vendor(*[a for a in (answer, not_found) if a is not None])
    with pytest.raises(AdapterError) as caught:
        await call(make(vendor), op)
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.retry_after) == (code, after)


@pytest.mark.parametrize(
    ("answer", "unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("dropped"), True),
        (httpx.Response(200, text="{truncated"), True),
        (refusal(500, 5000, "internal"), False),
    ],
)
async def test_a_submit_that_may_have_landed_says_so(make: Any, answer: Any, unknown: bool) -> None:
    with pytest.raises(RetryableError) as caught:
        await make(Vendor(answer)).submit(request())
    assert caught.value.outcome_unknown is unknown


async def test_a_create_is_never_retried_inside_the_adapter(make: Any) -> None:
    vendor = Vendor(refusal(503, 5001, "maintenance"))
    with pytest.raises(RetryableError):
        await make(vendor).submit(request())
    assert len(vendor.seen) == 1


@pytest.mark.parametrize("job", ["843759", "video/843759", "text2video/"])
async def test_a_job_id_that_is_not_ours_is_lost(make: Any, job: str) -> None:
    with pytest.raises(BackendJobLost):
        await make(Vendor()).poll(job)
