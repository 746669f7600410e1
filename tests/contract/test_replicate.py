"""ReplicateAdapter against scripted Replicate answers shaped as in the vendor reference (§7):
create → poll through every status → download, each error class, cancel, unknown states,
malformed bodies and transport errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
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
from adapters.replicate import (
    ReplicateAdapter,
    parse_progress,
    parse_status,
    to_payload,
)

TOKEN = "r8_test_token"
API = "https://api.replicate.com"
PID = "gm3qorzdhgbfurvjtvhg6dckhu"
MODEL = "wan-video/wan-2.2-t2v-fast"
VIDEO_URL = "https://replicate.delivery/xezq/abc123/output.mp4"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"frame" * 5000

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": MODEL,
        "prompt": "A harbour at dawn, boats rocking",
        "duration_s": 5,
        "fps": 16,
        "width": 832,
        "height": 480,
        "aspect_ratio": "16:9",
        "resolution": "480p",
    }
    return GenerationRequest(**{**fields, **overrides})


def prediction(status: str, **fields: Any) -> dict[str, Any]:
    """A prediction object as the reference lists its fields."""
    return {
        "id": PID,
        "model": MODEL,
        "version": "c483b1f7b892065bc58ebadb6381abf557f6b1f517d2ff0febb3fb635cf49b4d",
        "status": status,
        "input": {"prompt": "A harbour at dawn, boats rocking"},
        "output": None,
        "logs": "",
        "error": None,
        "metrics": {},
        "created_at": "2026-11-02T10:00:00.000Z",
        "started_at": None,
        "completed_at": None,
        "urls": {
            "get": f"{API}/v1/predictions/{PID}",
            "cancel": f"{API}/v1/predictions/{PID}/cancel",
        },
        **fields,
    }


class Replicate:
    """Scripted Replicate: answers per ``METHOD url`` in order (the last repeats), records all."""

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


def adapter(vendor: Replicate) -> ReplicateAdapter:
    client = httpx.AsyncClient(transport=httpx.MockTransport(vendor), base_url=API)
    return ReplicateAdapter(TOKEN, client=client)


TQDM = " 45%|████▌     | 9/20 [00:31<00:38,  3.50s/it]"
CREATE = f"POST {API}/v1/models/{MODEL}/predictions"
GET = f"GET {API}/v1/predictions/{PID}"


# --- the whole life of a job ------------------------------------------------------------------


async def test_create_poll_every_state_then_download() -> None:
    vendor = Replicate(
        {
            CREATE: httpx.Response(201, json=prediction("starting")),
            GET: [
                httpx.Response(200, json=prediction("starting")),
                httpx.Response(200, json=prediction("processing", logs="loading weights\n")),
                httpx.Response(
                    200,
                    json=prediction("processing", logs=f"loading weights\n 5%|▌ | 1/20\n{TQDM}"),
                ),
                httpx.Response(
                    200,
                    json=prediction("succeeded", output=VIDEO_URL, metrics={"predict_time": 62.1}),
                ),
            ],
            f"GET {VIDEO_URL}": httpx.Response(200, content=VIDEO),
        }
    )
    replicate = adapter(vendor)
    hook = "https://gw.example/hooks/replicate?attempt=att_1"
    submission = await replicate.submit(request(seed=11, callback_url=hook))
    assert (submission.backend_job_id, submission.poll_after_s) == (PID, 5.0)
    create = vendor.seen[0]
    assert (create.method, str(create.url)) == ("POST", f"{API}/v1/models/{MODEL}/predictions")
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert "prefer" not in create.headers  # async: never hold the create open
    assert json.loads(create.content) == {
        "input": {
            "prompt": "A harbour at dawn, boats rocking",
            "seed": 11,
            "num_frames": 81,
            "frames_per_second": 16,
            "resolution": "480p",
            "aspect_ratio": "16:9",
        },
        "webhook": hook,
        "webhook_events_filter": ["start", "completed"],
    }

    states = [await replicate.poll(PID) for _ in range(4)]
    assert [(s.state, s.raw_state) for s in states] == [
        ("queued", "starting"),
        ("running", "processing"),
        ("running", "processing"),
        ("succeeded", "succeeded"),
    ]
    assert (states[1].progress, states[1].step) == (None, None)
    assert (states[2].progress, states[2].step, states[2].total_steps) == (0.45, 9, 20)
    done = states[-1]
    assert (done.output_url, done.failure, done.cost_usd_micros) == (VIDEO_URL, None, None)
    polls = [r for r in vendor.seen if r.method == "GET" and r.url.host == "api.replicate.com"]
    assert len(polls) == 4
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in polls)

    video = b"".join([c async for c in replicate.download(PID, done)])
    assert video == VIDEO
    delivery = vendor.seen[-1]
    assert str(delivery.url) == VIDEO_URL
    assert "authorization" not in delivery.headers  # public delivery URL: no token


async def test_a_pinned_version_uses_the_predictions_endpoint() -> None:
    vendor = Replicate(
        {f"POST {API}/v1/predictions": httpx.Response(201, json=prediction("starting"))}
    )
    await adapter(vendor).submit(request(model="acme/clipper:5c7d5dc6dd8b"))
    (create,) = vendor.seen
    assert json.loads(create.content) == {
        "version": "5c7d5dc6dd8b",
        "input": {
            "prompt": "A harbour at dawn, boats rocking",
            "duration": 5,
            "aspect_ratio": "16:9",
        },
    }


async def test_a_file_url_on_the_api_host_is_fetched_with_the_token() -> None:
    file_url = f"{API}/v1/files/abc/download"
    vendor = Replicate({f"GET {file_url}": httpx.Response(200, content=VIDEO)})
    done = JobStatus(state="succeeded", output_url=file_url)
    assert b"".join([c async for c in adapter(vendor).download(PID, done)]) == VIDEO
    assert vendor.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_download_without_a_url_polls_again() -> None:
    vendor = Replicate(
        {
            GET: httpx.Response(200, json=prediction("succeeded", output=[VIDEO_URL])),
            f"GET {VIDEO_URL}": httpx.Response(200, content=VIDEO),
        }
    )
    chunks = [c async for c in adapter(vendor).download(PID, JobStatus(state="succeeded"))]
    assert b"".join(chunks) == VIDEO


async def test_cancel() -> None:
    vendor = Replicate(
        {
            f"POST {API}/v1/predictions/{PID}/cancel": httpx.Response(
                200, json=prediction("canceled")
            )
        }
    )
    await adapter(vendor).cancel(PID)
    (call,) = vendor.seen
    assert call.headers["authorization"] == f"Bearer {TOKEN}"


async def test_the_adapter_keeps_the_contract_and_closes_its_client() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(Replicate({})), base_url=API)
    replicate = ReplicateAdapter(TOKEN, client=client)
    assert isinstance(replicate, Adapter)
    assert (replicate.name, replicate.idempotent_submit, replicate.supports_cancel) == (
        "replicate",
        False,
        True,
    )
    assert replicate.configured_models() is None
    await replicate.aclose()
    assert client.is_closed


# --- statuses ---------------------------------------------------------------------------------

STATES = [
    (prediction("starting"), "queued", None),
    (prediction("processing", logs=TQDM), "running", None),
    (
        prediction("succeeded", output=[VIDEO_URL, "https://replicate.delivery/x/2.mp4"]),
        "succeeded",
        None,
    ),
    (prediction("succeeded", output=None), "failed", ("no_output", "fallback")),
    (prediction("failed", error="CUDA out of memory"), "failed", ("prediction_failed", "fallback")),
    (
        prediction(
            "failed",
            error="The input or output was flagged as sensitive. Please try again. (E005)",
        ),
        "failed",
        ("content_rejected", "fatal"),
    ),
    (prediction("canceled"), "canceled", None),
    (prediction("aborted"), "canceled", None),  # a Cancel-After deadline before it started
]


@pytest.mark.parametrize(("body", "state", "failure"), STATES)
def test_parse_status_maps_every_documented_status(
    body: dict[str, Any], state: str, failure: tuple[str, str] | None
) -> None:
    status = parse_status(body)
    assert (status.state, status.raw_state) == (state, body["status"])
    got = (status.failure.code, status.failure.failure_class) if status.failure else None
    assert got == failure
    if state == "succeeded":
        assert status.output_url == VIDEO_URL


@pytest.mark.parametrize("raw", ["queued", "PROCESSING", None, 3])
def test_an_unknown_status_is_an_error(raw: Any) -> None:
    with pytest.raises(BackendFailure) as caught:
        parse_status(prediction("starting") | {"status": raw})
    assert caught.value.code == "unknown_state"


def test_progress_comes_from_the_last_tqdm_line() -> None:
    assert parse_progress(f"{TQDM}\r100%|██████████| 20/20 [01:10<00:00]") == (1.0, 20, 20)
    assert parse_progress("no bars here") is None
    assert parse_progress(None) is None


# --- payloads ---------------------------------------------------------------------------------

IMG, LAST = "https://img.example/a.png", "https://img.example/z.png"
PROMPT = "A harbour at dawn, boats rocking"

PAYLOADS = [
    (
        {
            "model": "google/veo-3.1",
            "duration_s": 8,
            "audio": True,
            "resolution": "1080p",
            "image": IMG,
            "last_frame": LAST,
            "negative_prompt": "text",
        },
        {
            "prompt": PROMPT,
            "negative_prompt": "text",
            "duration": 8,
            "aspect_ratio": "16:9",
            "resolution": "1080p",
            "generate_audio": True,
            "image": IMG,
            "last_frame": LAST,
        },
    ),
    (
        {"model": "kwaivgi/kling-v2.1", "duration_s": 10, "image": IMG, "seed": 4},
        {"prompt": PROMPT, "duration": 10, "start_image": IMG},
    ),
    (
        {"model": "kwaivgi/kling-v1.6-standard", "negative_prompt": "blur"},
        {"prompt": PROMPT, "negative_prompt": "blur", "duration": 5, "aspect_ratio": "16:9"},
    ),
    (
        {
            "model": "wan-video/wan-2.2-i2v-fast",
            "image": IMG,
            "last_frame": LAST,
            "negative_prompt": "blur",
        },
        {
            "prompt": PROMPT,
            "num_frames": 81,
            "frames_per_second": 16,
            "resolution": "480p",
            "image": IMG,
            "last_image": LAST,
        },
    ),
    (
        {
            "model": "lightricks/ltx-2-fast",
            "duration_s": 6,
            "resolution": "1080p",
            "image": "data:image/png;base64,iVBO",
        },
        {
            "prompt": PROMPT,
            "duration": 6,
            "resolution": "1080p",
            "generate_audio": False,
            "image": "data:image/png;base64,iVBO",
        },
    ),
    (
        {"model": "acme/any-video", "seed": 2, "audio": True, "image": IMG},
        {
            "prompt": PROMPT,
            "seed": 2,
            "duration": 5,
            "aspect_ratio": "16:9",
            "generate_audio": True,
            "image": IMG,
        },
    ),
]


@pytest.mark.parametrize(("fields", "model_input"), PAYLOADS)
def test_to_payload_maps_each_family(fields: dict[str, Any], model_input: dict[str, Any]) -> None:
    path, body = to_payload(request(**fields))
    assert path == f"v1/models/{fields['model']}/predictions"
    assert body == {"input": model_input}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"model": "wan-video"}, "must be 'owner/name' or 'owner/name:version'"),
        ({"model": "a/b/c"}, "must be 'owner/name'"),
        ({"last_frame": LAST}, "last_frame needs image"),
        ({"model": "acme/any-video", "image": IMG, "last_frame": LAST}, "takes no last frame"),
        ({"image": "s3://bucket/a.png"}, "image must be an http(s) URL or a data: URI"),
    ],
)
def test_inputs_replicate_cannot_take_are_invalid(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(says)):
        to_payload(request(**fields))


# --- errors -----------------------------------------------------------------------------------


def problem(status: int, detail: str, title: str = "Error", **headers: str) -> Answer:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return lambda _: httpx.Response(status, json=body, headers=headers)


def reply(status: int, **kw: Any) -> Answer:
    return lambda _: httpx.Response(status, **kw)


def raise_(exc: Exception) -> Answer:
    def handler(req: httpx.Request) -> httpx.Response:
        raise exc

    return handler


THROTTLED = "Request was throttled. Your rate limit resets in ~30s."
CREDIT = "You have insufficient credit to run this model. Go to replicate.com/account/billing."

ERRORS = [
    # op, answer, error class, code, retry_after, outcome_unknown
    (
        "submit",
        problem(429, THROTTLED, **{"Retry-After": "7"}),
        RateLimited,
        "rate_limited",
        7.0,
        False,
    ),
    ("submit", problem(429, THROTTLED), RateLimited, "rate_limited", 30.0, False),  # from detail
    ("submit", problem(402, CREDIT), BackendFailure, "insufficient_credit", None, False),
    ("submit", problem(401, "Invalid token."), BackendFailure, "unauthorized", None, False),
    (
        "submit",
        problem(
            422,
            "- input.num_frames: Must be less than or equal to 121",
            title="Input validation failed",
        ),
        InvalidInput,
        "invalid_input",
        None,
        False,
    ),
    (
        "submit",
        problem(404, "The requested resource could not be found."),
        BackendFailure,
        "model_not_found",
        None,
        False,
    ),
    (
        "submit",
        reply(504, text="<html>Gateway Timeout</html>"),
        RetryableError,
        "http_504",
        None,
        True,
    ),
    (
        "submit",
        problem(503, "Service unavailable", **{"Retry-After": "3"}),
        RetryableError,
        "http_503",
        3.0,
        False,
    ),
    ("submit", reply(201, text="{not json"), RetryableError, "malformed", None, True),
    ("submit", reply(201, json={"status": "starting"}), RetryableError, "malformed", None, True),
    ("submit", raise_(httpx.ConnectError("refused")), RetryableError, "unreachable", None, False),
    ("submit", raise_(httpx.WriteTimeout("slow")), RetryableError, "timeout", None, True),
    ("poll", problem(404, "Not found."), BackendJobLost, "not_found", None, False),
    ("poll", problem(500, "Internal server error"), RetryableError, "http_500", None, False),
    ("poll", reply(200, json=prediction("paused")), BackendFailure, "unknown_state", None, False),
    ("poll", reply(200, json=[prediction("starting")]), RetryableError, "malformed", None, False),
    ("poll", raise_(httpx.ReadTimeout("slow")), RetryableError, "timeout", None, True),
    ("cancel", problem(404, "Not found."), BackendJobLost, "not_found", None, False),
    ("download", reply(404, text="Not Found"), BackendFailure, "output_expired", None, False),
    ("download", reply(503, text="busy"), RetryableError, "http_503", None, False),
    (
        "download",
        raise_(httpx.RemoteProtocolError("cut")),
        RetryableError,
        "unreachable",
        None,
        True,
    ),
]


async def call(replicate: ReplicateAdapter, op: str) -> Any:
    if op == "submit":
        return await replicate.submit(request())
    if op == "poll":
        return await replicate.poll(PID)
    if op == "cancel":
        return await replicate.cancel(PID)
    done = JobStatus(state="succeeded", output_url=VIDEO_URL)
    return b"".join([c async for c in replicate.download(PID, done)])


@pytest.mark.parametrize(("op", "answer", "error", "code", "wait", "unknown"), ERRORS)
async def test_errors_are_classified(
    op: str,
    answer: Answer,
    error: type[AdapterError],
    code: str,
    wait: float | None,
    unknown: bool,
) -> None:
    routes: dict[str, Answer | list[Answer]] = {
        CREATE: answer,
        GET: answer,
        f"POST {API}/v1/predictions/{PID}/cancel": answer,
        f"GET {VIDEO_URL}": answer,
    }
    with pytest.raises(AdapterError) as caught:
        await call(adapter(Replicate(routes)), op)
    err = caught.value
    assert type(err) is error, err
    assert (err.code, err.retry_after) == (code, wait)
    assert err.outcome_unknown is unknown
    assert err.retryable is issubclass(error, RetryableError)


async def test_a_validation_error_says_which_field() -> None:
    routes: dict[str, Answer | list[Answer]] = {
        CREATE: problem(422, "- input.num_frames: Must be less than or equal to 121")
    }
    with pytest.raises(InvalidInput, match="num_frames"):
        await adapter(Replicate(routes)).submit(request())
