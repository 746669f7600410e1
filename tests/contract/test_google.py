"""GoogleAdapter beyond the shared contract (``test_contract.py``, ``vendor_cases/google.py``):
inline images and videos, Omni prompts and cost, the key kept to Google's origin.

Veo: ``predictLongRunning`` → operation ``{"name", "done", "response"|"error"}``.
Omni: ``/v1beta/interactions`` with ``background: true`` → ``{"id", "status", "steps"}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from vendor_cases.google import (
    BASE,
    FILE_URI,
    IX,
    KEY,
    OMNI,
    OP,
    VEO,
    interaction,
    request,
    veo_done,
    video_step,
)

from adapters.base import (
    AdapterError,
    BackendFailure,
    BackendJobLost,
    ContentRejected,
    InvalidInput,
    JobStatus,
    RetryableError,
)
from adapters.google import (
    DEFAULT_OMNI_PRICES,
    GoogleAdapter,
    parse_interaction,
    parse_operation,
    to_payload,
    wire_for,
)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfirst").decode()
LAST = base64.b64encode(b"\x89PNG\r\n\x1a\nlast").decode()
VIDEO = b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 64

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception


class FakeGoogle:
    """Answers per (method, path) in order; records every request it saw."""

    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self.seen: list[httpx.Request] = []

    def on(self, method: str, url: str, *replies: Reply) -> None:
        parts = httpx.URL(url)
        self.replies.setdefault((method, f"{parts.host}{parts.path}"), []).extend(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        queue = self.replies.get((request.method, f"{request.url.host}{request.url.path}"))
        assert queue, f"unexpected {request.method} {request.url}"
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply


@pytest.fixture
def fake() -> FakeGoogle:
    return FakeGoogle()


@pytest.fixture
async def adapter(fake: FakeGoogle) -> Any:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url=BASE)
    adapter = GoogleAdapter(KEY, client=client)
    yield adapter
    await adapter.aclose()


def js(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def sent_json(req: httpx.Request) -> Any:
    return json.loads(req.content)


async def collect(adapter: GoogleAdapter, job_id: str, status: JobStatus) -> bytes:
    return b"".join([chunk async for chunk in adapter.download(job_id, status)])


# --- the contract ----------------------------------------------------------------------


def test_the_model_picks_the_wire() -> None:
    assert (wire_for(VEO), wire_for("veo-3.1-fast-generate-preview"), wire_for(OMNI)) == (
        "veo",
        "veo",
        "interactions",
    )


# --- Veo: long-running operations ------------------------------------------------------


async def test_a_download_redirected_off_googles_origin_loses_the_key(
    adapter: GoogleAdapter, fake: FakeGoogle
) -> None:
    storage = "https://storage.googleapis.com/bucket/vid1.mp4"
    fake.on("GET", FILE_URI, httpx.Response(302, headers={"location": storage}))
    fake.on("GET", storage, httpx.Response(200, content=VIDEO))
    assert await collect(adapter, OP, JobStatus(state="succeeded", output_url=FILE_URI)) == VIDEO
    keyed, redirected = fake.seen
    assert keyed.headers["x-goog-api-key"] == KEY
    assert "x-goog-api-key" not in redirected.headers  # the key never leaves Google's origin


def test_veo_payload_frames_and_callback() -> None:
    path, body = to_payload(
        request(
            image=f"data:image/png;base64,{PNG}",
            last_frame=f"data:image/jpeg;base64,{LAST}",
            resolution="1080p",
            aspect_ratio="9:16",
            callback_url="https://gw.example/hooks/1",
        )
    )
    assert path == f"/v1beta/models/{VEO}:predictLongRunning"
    assert body["instances"] == [
        {
            "prompt": "A lighthouse at dawn, slow push-in",
            "image": {"bytesBase64Encoded": PNG, "mimeType": "image/png"},
            "lastFrame": {"bytesBase64Encoded": LAST, "mimeType": "image/jpeg"},
        }
    ]
    assert body["parameters"]["resolution"] == "1080p"
    assert body["webhookConfig"] == {"uris": ["https://gw.example/hooks/1"]}


WEBHOOK_FIELDS = [
    pytest.param(VEO, "webhookConfig", id="veo"),
    pytest.param(OMNI, "webhook_config", id="omni"),
]


def _invalid(message: str) -> httpx.Response:
    body = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    return js(body, 400)


def _create_path(model: str) -> str:
    return to_payload(request(model=model))[0]


@pytest.mark.parametrize(("model", "field"), WEBHOOK_FIELDS)
async def test_a_create_refused_with_its_unconfirmed_webhook_is_sent_once_without_it(
    adapter: GoogleAdapter,
    fake: FakeGoogle,
    model: str,
    field: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The webhook's wire shape is UNCONFIRMED: a 400 made no job, so one resend is safe."""
    answer = js({"name": OP}) if model == VEO else js(interaction("in_progress"))
    refusal = _invalid(f'Invalid JSON payload received. Unknown name "{field}": no such field.')
    fake.on("POST", BASE + _create_path(model), refusal, answer)
    hooked = request(model=model, callback_url="https://gw.example/hooks/1")
    submission = await adapter.submit(hooked)
    assert submission.backend_job_id == (OP if model == VEO else IX)
    first, second = (sent_json(r) for r in fake.seen)
    assert field in first and field not in second
    assert {k: v for k, v in first.items() if k != field} == second
    assert field in caplog.text


@pytest.mark.parametrize(("model", "field"), WEBHOOK_FIELDS)
async def test_a_create_refused_again_without_the_webhook_is_bad_input(
    adapter: GoogleAdapter, fake: FakeGoogle, model: str, field: str
) -> None:
    fake.on("POST", BASE + _create_path(model), _invalid("duration out of range"))
    with pytest.raises(InvalidInput, match="duration out of range"):
        await adapter.submit(request(model=model, callback_url="https://gw.example/hooks/1"))
    assert len(fake.seen) == 2  # once with the webhook, once without: never a third time
    assert field not in sent_json(fake.seen[1])


@pytest.mark.parametrize(
    ("hooked", "reply"),
    [
        (False, _invalid("duration out of range")),  # no webhook sent: nothing to drop
        (True, js({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}, 500)),
    ],
    ids=["400-without-webhook", "500-with-webhook"],
)
async def test_only_a_refused_create_with_a_webhook_is_resent(
    adapter: GoogleAdapter, fake: FakeGoogle, hooked: bool, reply: httpx.Response
) -> None:
    fake.on("POST", BASE + _create_path(VEO), reply)
    callback = "https://gw.example/hooks/1" if hooked else None
    with pytest.raises(AdapterError):
        await adapter.submit(request(callback_url=callback))
    assert len(fake.seen) == 1


@pytest.mark.parametrize("model", [VEO, OMNI])
def test_payload_rejects_what_the_wire_cannot_carry(model: str) -> None:
    with pytest.raises(InvalidInput, match="last_frame needs image"):
        to_payload(request(model=model, last_frame=f"data:image/png;base64,{LAST}"))
    with pytest.raises(InvalidInput, match="data: URI"):
        to_payload(request(model=model, image="data:image/png,notbase64"))


async def test_image_urls_are_fetched_without_the_key(
    adapter: GoogleAdapter, fake: FakeGoogle
) -> None:
    fake.on("GET", "https://cdn.example/first.png", httpx.Response(200, content=b"\x89PNGfirst"))
    fake.on("GET", "https://cdn.example/last", js({}, 404))
    fake.on("POST", f"{BASE}/v1beta/models/{VEO}:predictLongRunning", js({"name": OP}))
    await adapter.submit(request(image="https://cdn.example/first.png"))
    fetch, create = fake.seen
    assert "x-goog-api-key" not in fetch.headers
    image = sent_json(create)["instances"][0]["image"]
    assert image == {
        "bytesBase64Encoded": base64.b64encode(b"\x89PNGfirst").decode(),
        "mimeType": "image/png",
    }
    with pytest.raises(InvalidInput, match="HTTP 404"):
        await adapter.submit(
            request(image="https://cdn.example/first.png", last_frame="https://cdn.example/last")
        )


@pytest.mark.parametrize(
    ("reply", "kind", "unknown"),
    [
        (
            httpx.Response(200, content=b"%PDF", headers={"content-type": "application/pdf"}),
            InvalidInput,
            False,
        ),
        (httpx.Response(503), RetryableError, False),
        (httpx.ConnectTimeout("slow cdn"), RetryableError, False),  # nothing reached Google
    ],
)
async def test_image_fetch_failures(
    adapter: GoogleAdapter, fake: FakeGoogle, reply: Reply, kind: type[AdapterError], unknown: bool
) -> None:
    fake.on("GET", "https://cdn.example/doc.pdf", reply)
    with pytest.raises(kind) as info:
        await adapter.submit(request(model=OMNI, image="https://cdn.example/doc.pdf"))
    assert info.value.outcome_unknown is unknown
    assert [r.url.host for r in fake.seen] == ["cdn.example"]


async def test_image_fetching_can_be_turned_off(fake: FakeGoogle) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url=BASE)
    adapter = GoogleAdapter(KEY, client=client, fetch_image_urls=False)
    with pytest.raises(InvalidInput, match="data: URI"):
        await adapter.submit(request(image="https://cdn.example/first.png"))
    assert fake.seen == []
    await adapter.aclose()


async def test_download_redirect_loop_is_bounded(adapter: GoogleAdapter, fake: FakeGoogle) -> None:
    fake.on("GET", FILE_URI, httpx.Response(302, headers={"location": FILE_URI}))
    with pytest.raises(BackendFailure, match="redirected"):
        await collect(adapter, OP, JobStatus(state="succeeded", output_url=FILE_URI))
    assert len(fake.seen) == 6


def test_veo_safety_filtered_result_is_a_content_refusal() -> None:
    reason = "Your prompt could not be generated because it violates the usage guidelines."
    status = parse_operation(veo_done(raiMediaFilteredCount=1, raiMediaFilteredReasons=[reason]))
    assert status.state == "failed" and status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == ("content_rejected", "fatal")
    assert status.failure.message == reason
    assert ContentRejected("x").failure_class == status.failure.failure_class
    empty = parse_operation(veo_done())  # done, zero samples: a safety block too
    assert empty.failure is not None and empty.failure.code == "content_rejected"


@pytest.mark.parametrize(
    ("error", "state", "code", "failure_class"),
    [
        (
            {"code": 3, "message": "bad", "status": "INVALID_ARGUMENT"},
            "failed",
            "invalid_argument",
            "fatal",
        ),
        ({"code": 13, "message": "internal error"}, "failed", "internal", "retryable"),
        ({"code": 8, "message": "busy"}, "failed", "resource_exhausted", "retryable"),
        ({"code": 7, "message": "denied"}, "failed", "permission_denied", "fallback"),
        ({"code": 1, "message": "cancelled"}, "canceled", None, None),
    ],
)
def test_veo_operation_errors(
    error: dict[str, Any], state: str, code: str | None, failure_class: str | None
) -> None:
    status = parse_operation({"name": OP, "done": True, "error": error})
    assert status.state == state
    got = (status.failure.code, status.failure.failure_class) if status.failure else (None, None)
    assert got == (code, failure_class)


@pytest.mark.parametrize(
    "body",
    [
        {"name": OP, "done": True},
        {"name": OP, "done": True, "response": {"@type": "SomethingElse"}},
        {"name": OP, "done": "maybe"},
    ],
)
def test_veo_unknown_state(body: dict[str, Any]) -> None:
    with pytest.raises(BackendFailure) as info:
        parse_operation(body)
    assert info.value.code == "unknown_state"


async def test_veo_inline_video_is_decoded(adapter: GoogleAdapter, fake: FakeGoogle) -> None:
    encoded = base64.b64encode(VIDEO).decode()
    body = veo_done({"video": {"encodedVideo": encoded, "encoding": "video/mp4"}})
    fake.on("GET", f"{BASE}/v1beta/{OP}", js(body))
    status = await adapter.poll(OP)
    assert (status.state, status.output_url) == ("succeeded", None)
    assert await collect(adapter, OP, status) == VIDEO


# --- Omni: Interactions API ------------------------------------------------------------


def test_omni_payload_frames_negative_and_webhook() -> None:
    path, body = to_payload(
        request(
            model=OMNI,
            image=f"data:image/png;base64,{PNG}",
            last_frame=f"data:image/png;base64,{LAST}",
            negative_prompt="dialogue",
            callback_url="https://gw.example/hooks/2",
        )
    )
    assert path == "/v1beta/interactions"
    assert body["input"] == [
        {
            "type": "text",
            "text": "[# Sources <FIRST_FRAME>@Image1 <LAST_FRAME>@Image2] "
            "A lighthouse at dawn, slow push-in\nAvoid: dialogue",
        },
        {"type": "image", "data": PNG, "mime_type": "image/png"},
        {"type": "image", "data": LAST, "mime_type": "image/png"},
    ]
    assert body["generation_config"] == {"video_config": {"task": "image_to_video"}}
    assert body["webhook_config"] == {"uris": ["https://gw.example/hooks/2"]}
    _, first_only = to_payload(request(model=OMNI, image=f"data:image/png;base64,{PNG}"))
    assert first_only["input"][0]["text"].startswith("<FIRST_FRAME> A lighthouse")


async def test_omni_inline_video_is_decoded(adapter: GoogleAdapter, fake: FakeGoogle) -> None:
    done = interaction("completed", video_step(data=base64.b64encode(VIDEO).decode()))
    fake.on("GET", f"{BASE}/v1beta/interactions/{IX}", js(done))
    status = await adapter.poll(IX)
    assert (status.state, status.output_url) == ("succeeded", None)
    assert await collect(adapter, IX, status) == VIDEO


@pytest.mark.parametrize(
    ("body", "state", "code", "failure_class"),
    [
        (interaction("cancelled"), "canceled", None, None),
        (
            interaction(
                "failed",
                errors=[{"code": "https://ai.google.dev/errors/internal", "message": "boom"}],
            ),
            "failed",
            "internal",
            "retryable",
        ),
        (
            interaction("failed", errors=[{"code": 429, "message": "slow down"}]),
            "failed",
            "http_429",
            "retryable",
        ),
        (interaction("failed"), "failed", "failed", "fallback"),
        (interaction("incomplete"), "failed", "incomplete", "fallback"),
        (interaction("budget_exceeded"), "failed", "budget_exceeded", "fallback"),
        (interaction("requires_action"), "failed", "requires_action", "fallback"),
        (interaction("completed", video_step()), "failed", "no_video", "fallback"),
        (
            interaction(
                "completed", {"type": "model_output", "error": {"code": 3, "message": "bad input"}}
            ),
            "failed",
            "invalid_argument",
            "fatal",
        ),
    ],
)
def test_omni_terminal_states(
    body: dict[str, Any], state: str, code: str | None, failure_class: str | None
) -> None:
    status = parse_interaction(body)
    assert (status.state, status.raw_state) == (state, body["status"])
    got = (status.failure.code, status.failure.failure_class) if status.failure else (None, None)
    assert got == (code, failure_class)


@pytest.mark.parametrize("raw", ["exploded", None, 3])
def test_omni_unknown_state(raw: Any) -> None:
    with pytest.raises(BackendFailure) as info:
        parse_interaction(interaction("queued") | {"status": raw})
    assert info.value.code == "unknown_state"


#: ``usage`` as python-genai's ``usage.py`` names it (vendors-2026-11.md §1): a 10 s clip.
OMNI_USAGE = {
    "total_input_tokens": 1_000,
    "total_output_tokens": 57_920 + 100,
    "total_thought_tokens": 400,
    "output_tokens_by_modality": [
        {"modality": "video", "tokens": 57_920},
        {"modality": "text", "tokens": 100},
    ],
}
#: 1000 x 1.50 + 57920 x 17.50 + (100 + 400) x 9 micro-USD: a 10 s clip is about $1.02
OMNI_COST = 1_500 + 1_013_600 + 4_500
OMNI_TOKENS = {
    "total_input_tokens": 1_000,
    "total_output_tokens": 58_020,
    "total_thought_tokens": 400,
    "video_output_tokens": 57_920,
}


def test_omni_cost_from_tokens_only_where_a_price_is_known() -> None:
    body = interaction("completed", video_step(uri=FILE_URI), usage=OMNI_USAGE)
    preview = parse_interaction(body | {"model": "gemini-omni-flash-preview"})
    assert preview.cost_usd_micros == OMNI_COST
    # 1.1 is billed at the preview's rates (UNCONFIRMED), as the catalog quotes it
    assert parse_interaction(body).cost_usd_micros == OMNI_COST
    unpriced = parse_interaction(body | {"model": "gemini-omni-1.2-flash"})
    assert (unpriced.cost_usd_micros, unpriced.vendor_usage) == (None, OMNI_TOKENS)
    priced = parse_interaction(body, {OMNI: DEFAULT_OMNI_PRICES["gemini-omni-flash-preview"]})
    assert priced.cost_usd_micros == OMNI_COST
    assert parse_interaction(body, {}).cost_usd_micros is None  # omni_prices replaces the table


async def test_an_omni_1_1_clip_reports_its_cost_through_a_default_adapter(
    adapter: GoogleAdapter, fake: FakeGoogle
) -> None:
    """Built as the gateway builds it (no ``omni_prices``), the catalog's 1.1 is priced."""
    done = interaction("completed", video_step(uri=FILE_URI), usage=OMNI_USAGE)
    fake.on("GET", f"{BASE}/v1beta/interactions/{IX}", js(done))
    status = await adapter.poll(IX)
    assert (status.state, status.output_url) == ("succeeded", FILE_URI)
    assert (status.cost_usd_micros, status.vendor_usage) == (OMNI_COST, OMNI_TOKENS)


# --- errors, both wires ----------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["../../v1beta/files", "..", "models/x/operations/.."])
async def test_bad_job_id_is_lost(adapter: GoogleAdapter, fake: FakeGoogle, job_id: str) -> None:
    with pytest.raises(BackendJobLost):
        await adapter.poll(job_id)
    assert fake.seen == []


async def test_aclose_closes_the_client(fake: FakeGoogle) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url=BASE)
    await GoogleAdapter(KEY, client=client).aclose()
    assert client.is_closed
    own = GoogleAdapter(KEY)
    await own.aclose()
