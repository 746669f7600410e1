"""Runway's THROTTLED state and failure codes, and the ``create_error`` knob: each vendor's
documented create refusals on the wire, then read by our own adapters over ASGI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from emulator_support import stepped
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.base import Adapter, AdapterError, GenerationRequest
from adapters.fal import FalAdapter
from adapters.google import GoogleAdapter
from adapters.kling import KlingAdapter
from adapters.luma import LumaAdapter
from adapters.minimax import MiniMaxAdapter
from adapters.runway import RunwayAdapter
from adapters.seedance import SeedanceAdapter
from emulator.app import GENERIC_ERRORS, create_app
from emulator.core import CreateError, Knobs

RUNWAY = {"Authorization": "Bearer k", "X-Runway-Version": "2024-11-06"}
RUNWAY_BODY = {"model": "gen4.5", "ratio": "1280:720", "promptText": "a kite", "duration": 5}


def asgi_client(app: FastAPI, vendor: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://emu/{vendor}"
    )


def shot(model: str, **fields: Any) -> GenerationRequest:
    values: dict[str, Any] = {
        "request_id": "att_1",
        "model": model,
        "prompt": "A harbour at dawn, boats rocking",
        "duration_s": 5,
        "fps": 24,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return GenerationRequest(**(values | fields))


# --- Runway: THROTTLED, failure codes ----------------------------------------------------


def test_runway_task_waits_throttled_then_pending_then_runs() -> None:
    app, clock = stepped(Knobs(throttle_s=10, queue_s=10, latency_s=10))
    with TestClient(app) as client:
        task = client.post("/runway/v1/text_to_video", json=RUNWAY_BODY, headers=RUNWAY).json()
        seen = []
        for _ in range(4):
            seen.append(client.get(f"/runway/v1/tasks/{task['id']}", headers=RUNWAY).json())
            clock.now += 10
        late = client.post("/runway/v1/text_to_video", json=RUNWAY_BODY, headers=RUNWAY).json()
        assert client.delete(f"/runway/v1/tasks/{late['id']}", headers=RUNWAY).status_code == 204
        canceled = client.get(f"/runway/v1/tasks/{late['id']}", headers=RUNWAY).json()
    assert [s["status"] for s in seen] == ["THROTTLED", "PENDING", "RUNNING", "SUCCEEDED"]
    assert "progress" not in seen[0] and seen[2]["progress"] == 0.0 and seen[3]["output"]
    assert canceled["status"] == "CANCELLED"  # a THROTTLED task can be canceled


def test_throttle_time_is_queue_time_for_vendors_without_the_state() -> None:
    app, clock = stepped(Knobs(throttle_s=10, latency_s=10))
    seedance = {"Authorization": "Bearer ark"}
    body = {"model": "seedance-1-0-pro-250528", "content": [{"type": "text", "text": "a kite"}]}
    with TestClient(app) as client:
        task = client.post("/seedance/contents/generations/tasks", json=body, headers=seedance)
        path = f"/seedance/contents/generations/tasks/{task.json()['id']}"
        first = client.get(path, headers=seedance).json()["status"]
        clock.now += 10
        second = client.get(path, headers=seedance).json()["status"]
    assert (first, second) == ("queued", "running")


async def test_our_runway_adapter_waits_out_throttled() -> None:
    app, clock = stepped(Knobs(throttle_s=10, latency_s=10))
    adapter = RunwayAdapter("rw_key", client=asgi_client(app, "runway"))
    try:
        job_id = (await adapter.submit(shot("gen4.5"))).backend_job_id
        seen = [await adapter.poll(job_id)]
        for _ in range(2):
            clock.now += 10
            seen.append(await adapter.poll(job_id))
    finally:
        await adapter.aclose()
    assert [(s.raw_state, s.state) for s in seen] == [
        ("THROTTLED", "queued"),
        ("RUNNING", "running"),
        ("SUCCEEDED", "succeeded"),
    ]


@pytest.mark.parametrize(
    ("fail_code", "failure_code", "failure_class"),
    [
        ("SAFETY.INPUT.TEXT", "SAFETY.INPUT.TEXT", "fatal"),
        ("SAFETY.OUTPUT.VIDEO", "SAFETY.OUTPUT.VIDEO", "fatal"),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", "INPUT_PREPROCESSING.SAFETY.TEXT", "fatal"),
        ("ASSET.INVALID", "ASSET.INVALID", "fatal"),
        ("INTERNAL.BAD_OUTPUT.CODE01", "INTERNAL.BAD_OUTPUT.CODE01", "fallback"),
        ("THIRD_PARTY.UNAVAILABLE", "THIRD_PARTY.UNAVAILABLE", "retryable"),
        ("generation_failed", "INTERNAL", "retryable"),  # not a Runway code: the default
    ],
)
async def test_runway_failed_task_carries_the_fail_code(
    fail_code: str, failure_code: str, failure_class: str
) -> None:
    app = create_app(Knobs(latency_s=0, fail_rate=1, fail_code=fail_code))
    with TestClient(app) as client:
        task = client.post("/runway/v1/text_to_video", json=RUNWAY_BODY, headers=RUNWAY).json()
        body = client.get(f"/runway/v1/tasks/{task['id']}", headers=RUNWAY).json()
    assert body["status"] == "FAILED" and body["failureCode"] == failure_code
    assert isinstance(body["failure"], str) and body["failure"]
    adapter = RunwayAdapter("rw_key", client=asgi_client(app, "runway"))
    try:
        status = await adapter.poll((await adapter.submit(shot("gen4.5"))).backend_job_id)
    finally:
        await adapter.aclose()
    assert status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == (failure_code, failure_class)


# --- create_error on the wire ------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def kling_jwt() -> str:
    now = int(time.time())
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64url(json.dumps({"iss": "AK", "exp": now + 1800, "nbf": now - 5}).encode())
    signature = hmac.new(b"SK", f"{head}.{claims}".encode(), hashlib.sha256).digest()
    return f"{head}.{claims}.{_b64url(signature)}"


#: vendor -> (create path, headers, what of the body names the error).
CREATES: dict[str, tuple[str, Callable[[], dict[str, str]], Callable[[Any], Any]]] = {
    "runway": ("/runway/v1/text_to_video", lambda: RUNWAY, lambda b: sorted(b)),
    "kling": (
        "/kling/v1/videos/text2video",
        lambda: {"Authorization": f"Bearer {kling_jwt()}"},
        lambda b: (b["code"], b["data"]),
    ),
    "google": (
        "/google/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
        lambda: {"x-goog-api-key": "g-key"},
        lambda b: (b["error"]["code"], b["error"]["status"]),
    ),
    "minimax": (
        "/minimax/v1/video_generation",
        lambda: {"Authorization": "Bearer mm"},
        lambda b: (b["task_id"], b["base_resp"]["status_code"]),
    ),
    "seedance": (
        "/seedance/contents/generations/tasks",
        lambda: {"Authorization": "Bearer ark"},
        lambda b: b["error"]["code"],
    ),
    "fal": (
        "/fal/fal-ai/veo3",
        lambda: {"Authorization": "Key fal-key"},
        lambda b: b["detail"] if isinstance(b["detail"], str) else b["detail"][0]["type"],
    ),
    "luma": (
        "/luma/generations",
        lambda: {"Authorization": "Bearer luma-key"},
        lambda b: b["detail"] if isinstance(b["detail"], str) else b["detail"][0]["type"],
    ),
}
GENERIC = object()  # the vendor documents no body for this refusal
#: vendor -> name -> (HTTP status, what names the error) or GENERIC.
DOCUMENTED: dict[str, dict[str, Any]] = {
    "runway": {
        "billing": GENERIC,
        "quota": (429, ["error"]),
        "bad_input": (400, ["error"]),
        "content": GENERIC,
        "unavailable": (503, ["error"]),
    },
    "kling": {
        "billing": (429, (1102, None)),
        "quota": (429, (1303, None)),
        "bad_input": (400, (1201, None)),
        "content": (400, (1301, None)),
        "unavailable": (503, (5001, None)),
    },
    "google": {
        "billing": GENERIC,
        "quota": (429, (429, "RESOURCE_EXHAUSTED")),
        "bad_input": (400, (400, "INVALID_ARGUMENT")),
        "content": GENERIC,
        "unavailable": (503, (503, "UNAVAILABLE")),
    },
    "minimax": {  # HTTP 200s
        "billing": (200, ("", 1008)),
        "quota": GENERIC,
        "bad_input": (200, ("", 2013)),
        "content": (200, ("", 1026)),
        "unavailable": GENERIC,
    },
    "seedance": {
        "billing": (403, "AccountOverdueError"),
        "quota": (429, "QuotaExceeded"),
        "bad_input": (400, "InvalidParameter"),
        "content": (400, "InputTextSensitiveContentDetected"),
        "unavailable": (500, "InternalServiceError"),
    },
    "fal": {
        "billing": GENERIC,
        "quota": GENERIC,
        "bad_input": (422, "missing"),
        "content": (422, "content_policy_violation"),
        "unavailable": (503, "Service Unavailable"),
    },
    "luma": {
        "billing": (402, "Insufficient credits: the budget is exhausted."),
        "quota": (429, "Too many concurrent generations."),
        "bad_input": (422, "missing"),
        "content": GENERIC,
        "unavailable": (503, "Service temporarily unavailable."),
    },
}
#: Only Luma documents Retry-After on the refusals (its concurrency 429).
RETRY_AFTER = {("luma", "quota")}


@pytest.mark.parametrize(
    ("vendor", "name"),
    [(vendor, name) for vendor, names in DOCUMENTED.items() for name in names],
)
def test_create_error_answers_the_documented_refusal(vendor: str, name: CreateError) -> None:
    path, headers, names = CREATES[vendor]
    expected = DOCUMENTED[vendor][name]
    with TestClient(create_app(Knobs(create_error=name, retry_after_s=9))) as client:
        response = client.post(path, json={}, headers=headers())
        assert client.get("/_emulator/jobs").json() == []  # refused: nothing was made
        stats = client.get("/_emulator/stats").json()["requests"]
    if expected is GENERIC:
        generic = GENERIC_ERRORS[name]
        assert (response.status_code, response.json()) == (generic.status, generic.body)
    else:
        assert (response.status_code, names(response.json())) == expected
    assert ("retry-after" in response.headers) == ((vendor, name) in RETRY_AFTER)
    assert stats["create_error"] == 1


def test_google_daily_quota_names_the_per_day_quota() -> None:
    path, headers, _ = CREATES["google"]
    with TestClient(create_app(Knobs(create_error="quota"))) as client:
        error = client.post(path, json={}, headers=headers()).json()["error"]
        omni = client.post("/google/v1beta/interactions", json={}, headers=headers())
    quota_failure, retry_info = error["details"]
    assert quota_failure["@type"] == "type.googleapis.com/google.rpc.QuotaFailure"
    assert "PerDay" in quota_failure["violations"][0]["quotaId"]
    assert retry_info["@type"].endswith("google.rpc.RetryInfo")
    assert omni.status_code == 429 and omni.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_create_error_only_for_the_vendors_named_and_at_its_rate() -> None:
    knobs = Knobs(create_error="unavailable", create_error_vendors=["kling"])
    with TestClient(create_app(knobs)) as client:
        runway = client.post("/runway/v1/text_to_video", json=RUNWAY_BODY, headers=RUNWAY)
        kling = client.post(
            "/kling/v1/videos/text2video",
            json={"model_name": "kling-v2-6", "prompt": "a kite"},
            headers={"Authorization": f"Bearer {kling_jwt()}"},
        )
        assert (runway.status_code, kling.status_code) == (200, 503)
        # Polls and other kinds are never refused by it.
        task = runway.json()["id"]
        assert client.get(f"/runway/v1/tasks/{task}", headers=RUNWAY).status_code == 200
        client.put("/_emulator/knobs", json={"create_error": "billing", "create_error_rate": 0})
        runway = client.post("/runway/v1/text_to_video", json=RUNWAY_BODY, headers=RUNWAY)
        assert runway.status_code == 200
        client.put(
            "/_emulator/knobs",
            json={"create_error": "billing", "create_error_rate": 0.5, "seed": 3},
        )
        codes = {
            client.post("/runway/v1/text_to_video", json=RUNWAY_BODY, headers=RUNWAY).status_code
            for _ in range(40)
        }
        assert codes == {200, 402}
    with pytest.raises(ValueError):
        Knobs(create_error="broke")  # type: ignore[arg-type]


# --- our adapters read the refusals as the reference classifies them --------------------


def _adapter(vendor: str, app: FastAPI) -> Adapter:
    client = asgi_client(app, vendor)
    adapters: dict[str, Callable[[], Adapter]] = {
        "runway": lambda: RunwayAdapter("rw_key", client=client),
        "kling": lambda: KlingAdapter("AK:SK", client=client),
        "google": lambda: GoogleAdapter("g-key", client=client, fetch_image_urls=False),
        "minimax": lambda: MiniMaxAdapter("mm-key", client=client),
        "seedance": lambda: SeedanceAdapter("ark-key", client=client),
        "fal": lambda: FalAdapter("fal-key", client=client, pricing_url=None),
        "luma": lambda: LumaAdapter("luma-key", client=client),
    }
    return adapters[vendor]()


@pytest.mark.parametrize(
    ("vendor", "model", "name", "code", "failure_class"),
    [
        # Kling 1102 (resource pack spent) is billing: not retried, another vendor may do.
        ("kling", "kling-v2-6", "billing", "billing", "fallback"),
        ("kling", "kling-v2-6", "quota", "concurrency_limited", "retryable"),
        # Google's daily quota: waiting will not clear it (a per-minute 429 would retry).
        ("google", "veo-3.1-generate-preview", "quota", "quota_exhausted", "fallback"),
        ("google", "veo-3.1-generate-preview", "bad_input", "invalid_argument", "fatal"),
        # MiniMax's HTTP 200 with base_resp 1008 (balance) falls back.
        ("minimax", "MiniMax-Hailuo-2.3", "billing", "billing", "fallback"),
        ("minimax", "MiniMax-Hailuo-2.3", "content", "content_rejected", "fatal"),
        # Runway's 429 without Retry-After on a create is the daily quota.
        ("runway", "gen4.5", "quota", "quota_exceeded", "fallback"),
        ("seedance", "seedance-1-0-pro-250528", "billing", "billing", "fallback"),
        ("seedance", "seedance-1-0-pro-250528", "quota", "billing", "fallback"),
        ("fal", "fal-ai/veo3", "content", "content_policy_violation", "fatal"),
        ("luma", "ray-3.2", "quota", "rate_limited", "retryable"),
    ],
)
async def test_our_adapter_classifies_the_refusal(
    vendor: str, model: str, name: CreateError, code: str, failure_class: str
) -> None:
    app = create_app(Knobs(create_error=name, retry_after_s=2))
    adapter = _adapter(vendor, app)
    try:
        with pytest.raises(AdapterError) as caught:
            await adapter.submit(shot(model, duration_s=6 if vendor == "minimax" else 5))
    finally:
        await adapter.aclose()
    error = caught.value
    assert (error.code, error.failure_class) == (code, failure_class), error
    assert not error.outcome_unknown  # a documented refusal made no job
    if failure_class == "retryable" and vendor == "luma":
        assert error.retry_after == 2
