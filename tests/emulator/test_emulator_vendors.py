"""Luma, Replicate and fal on the emulator: each wire through its states, errors, cancel
and callback bodies, then our own adapters driven against it over ASGI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from emulator_support import Clock, stepped
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.base import Adapter, GenerationRequest, JobStatus
from adapters.fal import FalAdapter
from adapters.luma import ApiChoice, LumaAdapter, wire_for
from adapters.replicate import ReplicateAdapter
from emulator.app import create_app
from emulator.core import Knobs, sample_mp4
from emulator.vendors import fal, luma, replicate

#: Queued for 10 s, then running for 10 s (on a clock the tests move by hand).
SLOW = Knobs(queue_s=10, latency_s=10)
LUMA = {"Authorization": "Bearer luma-key"}
RP = {"Authorization": "Bearer r8_key"}
FAL = {"Authorization": "Key fal-key"}
AGENTS_BODY = {
    "prompt": "a kite over dunes",
    "type": "video",
    "model": "ray-3.2",
    "aspect_ratio": "16:9",
    "video": {"duration": "5s", "resolution": "720p"},
}
DM_BODY = {"prompt": "a kite", "model": "ray-2", "duration": "5s", "resolution": "720p"}
RP_CREATE = "/replicate/v1/models/wan-video/wan-2.2-t2v-fast/predictions"
FAL_ENDPOINT = "fal-ai/kling-video/v2.1/master/text-to-video"


def is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


# --- Luma -----------------------------------------------------------------------------------


def test_luma_agents_generation_goes_queued_processing_completed() -> None:
    app, clock = stepped(SLOW)
    with TestClient(app) as client:
        headers = {**LUMA, "X-Request-Id": "att_1"}
        created = client.post("/luma/generations", json=AGENTS_BODY, headers=headers)
        assert created.status_code == 201
        assert created.headers["x-request-id"] == "att_1"
        assert created.headers["x-api-version"] == luma.API_VERSION
        generation = created.json()
        assert generation["state"] == "queued" and generation["output"] == []
        assert generation["type"] == "video" and generation["model"] == "ray-3.2"
        url = f"/luma/generations/{generation['id']}"
        clock.now += 15
        assert client.get(url, headers=LUMA).json()["state"] == "processing"
        clock.now += 10
        done = client.get(url, headers=LUMA).json()
        assert done["state"] == "completed" and done["failure_code"] is None
        [output] = done["output"]
        assert output["type"] == "video" and is_mp4(client.get(output["url"]).content)


@pytest.mark.parametrize(
    ("fail_code", "expected"),
    [("content_moderated", "content_moderated"), ("no_such_code", "generation_failed")],
)
def test_luma_agents_failure_codes_are_the_documented_ones(fail_code: str, expected: str) -> None:
    with TestClient(create_app(Knobs(latency_s=0, fail_rate=1, fail_code=fail_code))) as client:
        generation = client.post("/luma/generations", json=AGENTS_BODY, headers=LUMA).json()
        assert generation["state"] == "failed" and generation["output"] == []
        assert generation["failure_code"] == expected and generation["failure_reason"]


def test_luma_errors_carry_detail() -> None:
    with TestClient(create_app(Knobs(latency_s=0))) as client:
        missing = client.post("/luma/generations", json=AGENTS_BODY)
        assert missing.status_code == 401 and missing.json()["detail"]
        assert client.get("/luma/generations/nope", headers=LUMA).status_code == 404
        no_prompt = client.post("/luma/generations", json={"type": "video"}, headers=LUMA)
        assert no_prompt.status_code == 422
        assert no_prompt.json()["detail"][0]["loc"] == ["body", "prompt"]
        bad = {**AGENTS_BODY, "video": {"duration": "9s"}}
        assert client.post("/luma/generations", json=bad, headers=LUMA).status_code == 422
        image = {**AGENTS_BODY, "type": "image"}
        assert client.post("/luma/generations", json=image, headers=LUMA).status_code == 400
        generation = client.post("/luma/generations", json=AGENTS_BODY, headers=LUMA).json()
        # The Agents API cannot cancel or delete.
        delete = client.delete(f"/luma/generations/{generation['id']}", headers=LUMA)
        assert delete.status_code == 405


def test_luma_dream_machine_generation_list_and_delete() -> None:
    app, clock = stepped(SLOW)
    with TestClient(app) as client:
        created = client.post("/luma/generations/video", json=DM_BODY, headers=LUMA)
        assert created.status_code == 201
        generation = created.json()
        assert generation["state"] == "queued" and generation["assets"] is None
        assert generation["generation_type"] == "video" and generation["request"] == DM_BODY
        url = f"/luma/generations/{generation['id']}"
        clock.now += 15
        assert client.get(url, headers=LUMA).json()["state"] == "dreaming"
        clock.now += 10
        done = client.get(url, headers=LUMA).json()
        assert done["state"] == "completed" and "output" not in done
        assert is_mp4(client.get(done["assets"]["video"]).content)
        listing = client.get("/luma/generations?limit=5", headers=LUMA).json()
        assert listing["count"] == 1 and listing["generations"][0]["id"] == generation["id"]
        assert client.delete(url, headers=LUMA).status_code == 204
        assert client.get(url, headers=LUMA).status_code == 404
        assert client.delete(url, headers=LUMA).status_code == 404
        ten = {**DM_BODY, "duration": "10s"}  # Dream Machine does 5s and 9s
        assert client.post("/luma/generations/video", json=ten, headers=LUMA).status_code == 422
        assert client.post("/luma/generations/video", json={"prompt": "x"}, headers=LUMA).json()[
            "detail"
        ][0]["loc"] == ["body", "model"]


def test_luma_dream_machine_callback_is_the_generation() -> None:
    app = create_app(Knobs(latency_s=0))
    client = TestClient(app)  # no lifespan: nothing is actually delivered
    body = {**DM_BODY, "callback_url": "https://hooks.example/luma"}
    generation = client.post("/luma/generations/video", json=body, headers=LUMA).json()
    em = app.state.emulator
    job = em.jobs[generation["id"]]
    assert job.callback_url == "https://hooks.example/luma"
    callback_body = luma.routes(em).callback_body
    assert callback_body is not None
    sent = callback_body(job, "http://127.0.0.1:9100")
    assert sent["id"] == job.id and sent["state"] == "completed"
    assert sent["assets"]["video"] == f"http://127.0.0.1:9100/_emulator/files/{job.id}.mp4"


# --- Replicate ------------------------------------------------------------------------------


def test_replicate_prediction_goes_starting_processing_succeeded() -> None:
    app, clock = stepped(SLOW)
    with TestClient(app) as client:
        created = client.post(RP_CREATE, json={"input": {"prompt": "a kite"}}, headers=RP)
        assert created.status_code == 201
        prediction = created.json()
        assert prediction["status"] == "starting" and prediction["output"] is None
        assert prediction["model"] == "wan-video/wan-2.2-t2v-fast"
        assert prediction["input"] == {"prompt": "a kite"} and prediction["started_at"] is None
        assert prediction["urls"]["get"].endswith(f"/replicate/v1/predictions/{prediction['id']}")
        clock.now += 15
        running = client.get(prediction["urls"]["get"], headers=RP).json()
        assert running["status"] == "processing" and running["started_at"]
        assert running["logs"] == " 50%|█████     | 10/20"  # tqdm, as the SDK parses it
        clock.now += 10
        done = client.get(prediction["urls"]["get"], headers=RP).json()
        assert done["status"] == "succeeded" and done["completed_at"] and done["error"] is None
        assert done["metrics"] == {"predict_time": 10.0}
        assert is_mp4(client.get(done["output"]).content)


def test_replicate_cancel_versions_and_problems() -> None:
    app, _ = stepped(SLOW)
    with TestClient(app) as client:
        prediction = client.post(RP_CREATE, json={"input": {}}, headers=RP).json()
        canceled = client.post(prediction["urls"]["cancel"], headers=RP)
        assert canceled.status_code == 200
        body = canceled.json()
        assert body["status"] == "canceled" and body["completed_at"] and body["started_at"] is None
        again = client.post(prediction["urls"]["cancel"], headers=RP)
        assert again.json()["status"] == "canceled"
        unknown = client.get("/replicate/v1/predictions/nope", headers=RP)
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        assert client.post("/replicate/v1/predictions/nope/cancel", headers=RP).status_code == 404
        anonymous = client.get(prediction["urls"]["get"])
        assert anonymous.status_code == 401 and anonymous.json()["title"] == "Unauthenticated"
        assert client.post(RP_CREATE, json={"prompt": "x"}, headers=RP).status_code == 422
        bad_filter = {"input": {}, "webhook_events_filter": ["finished"]}
        assert client.post(RP_CREATE, json=bad_filter, headers=RP).status_code == 422
        pinned = client.post(
            "/replicate/v1/predictions", json={"version": "c483b1f7", "input": {}}, headers=RP
        )
        assert pinned.status_code == 201 and pinned.json()["version"] == "c483b1f7"
        unpinned = client.post("/replicate/v1/predictions", json={"input": {}}, headers=RP)
        assert unpinned.status_code == 422


def test_replicate_prefer_wait_holds_until_the_prediction_ends() -> None:
    with TestClient(create_app(Knobs(latency_s=2, time_scale=200))) as client:  # 10 ms
        headers = {**RP, "Prefer": "wait=5"}
        prediction = client.post(RP_CREATE, json={"input": {}}, headers=headers).json()
        assert prediction["status"] == "succeeded"


def test_replicate_webhook_signature_matches_the_standard_webhooks_vector() -> None:
    signature = replicate.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_replicate_webhook_is_the_prediction_signed_with_the_account_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(Knobs(latency_s=0))
    client = TestClient(app)  # no lifespan: nothing is actually delivered
    body = {
        "input": {"prompt": "a kite"},
        "webhook": "https://hooks.example/rp",
        "webhook_events_filter": ["start", "completed"],
    }
    prediction = client.post(RP_CREATE, json=body, headers=RP).json()
    em = app.state.emulator
    job = em.jobs[prediction["id"]]
    assert job.callback_url == "https://hooks.example/rp"
    callback_body = replicate.routes(em).callback_body
    assert callback_body is not None
    sent = callback_body(job, "http://127.0.0.1:9100")
    assert sent["id"] == job.id and sent["status"] == "succeeded"
    assert sent["output"] == f"http://127.0.0.1:9100/_emulator/files/{job.id}.mp4"
    raw = json.dumps(sent).encode()
    headers = replicate.webhook_headers(job, raw, timestamp=1_700_000_000)
    # Verified as a receiver would, with the secret the API hands out.
    secret = client.get("/replicate/v1/webhooks/default/secret", headers=RP).json()["key"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + raw
    digest = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert f"v1,{digest}" in headers["webhook-signature"].split()
    monkeypatch.setattr(replicate, "SIGNING_SECRET", "whsec_" + base64.b64encode(b"k2").decode())
    rotated = replicate.webhook_headers(job, raw, timestamp=1_700_000_000)
    assert rotated["webhook-signature"] != headers["webhook-signature"]


# --- fal ------------------------------------------------------------------------------------


def test_fal_request_goes_in_queue_in_progress_completed() -> None:
    app, clock = stepped(SLOW)
    with TestClient(app) as client:
        submit = {"prompt": "a kite", "duration": "5"}
        first = client.post(f"/fal/{FAL_ENDPOINT}", json=submit, headers=FAL).json()
        clock.now += 1
        second = client.post(f"/fal/{FAL_ENDPOINT}", json=submit, headers=FAL).json()
        # The request URLs drop the endpoint's subpath.
        base = f"http://testserver/fal/fal-ai/kling-video/requests/{first['request_id']}"
        assert (first["response_url"], first["status_url"], first["cancel_url"]) == (
            base,
            f"{base}/status",
            f"{base}/cancel",
        )
        assert first["status"] == "IN_QUEUE" and first["gateway_request_id"]
        assert (first["queue_position"], second["queue_position"]) == (0, 1)
        queued = client.get(second["status_url"], headers=FAL)
        assert queued.status_code == 202
        assert queued.json()["status"] == "IN_QUEUE" and queued.json()["queue_position"] == 1
        early = client.get(first["response_url"], headers=FAL)
        assert early.status_code == 400  # no result yet
        clock.now += 15
        running = client.get(f"{first['status_url']}?logs=1", headers=FAL)
        assert running.status_code == 202 and running.json()["status"] == "IN_PROGRESS"
        assert isinstance(running.json()["logs"], list)
        clock.now += 10
        done = client.get(first["status_url"], headers=FAL)
        assert done.status_code == 200 and done.json()["status"] == "COMPLETED"
        assert "error" not in done.json() and done.json()["metrics"]["inference_time"] == 10.0
        result = client.get(first["response_url"], headers=FAL)
        assert result.status_code == 200 and result.headers["x-fal-billable-units"] == "5"
        video = result.json()["video"]
        assert video["content_type"] == "video/mp4" and is_mp4(client.get(video["url"]).content)


def test_fal_cancel_only_stops_a_queued_request() -> None:
    app, clock = stepped(SLOW)
    with TestClient(app) as client:
        queued = client.post(f"/fal/{FAL_ENDPOINT}", json={}, headers=FAL).json()
        cancel = client.put(queued["cancel_url"], headers=FAL)
        assert cancel.status_code == 202 and cancel.json() == {"status": "CANCELLATION_REQUESTED"}
        status = client.get(queued["status_url"], headers=FAL).json()
        assert status["status"] == "COMPLETED" and status["error"]
        assert client.get(queued["response_url"], headers=FAL).status_code == 400
        running = client.post(f"/fal/{FAL_ENDPOINT}", json={}, headers=FAL).json()
        clock.now += 15
        assert client.put(running["cancel_url"], headers=FAL).status_code == 202
        clock.now += 10
        status = client.get(running["status_url"], headers=FAL).json()
        assert status["status"] == "COMPLETED" and "error" not in status  # it ran on
        late = client.put(running["cancel_url"], headers=FAL)
        assert late.status_code == 400 and late.json() == {"status": "ALREADY_COMPLETED"}
        unknown = client.put("/fal/fal-ai/kling-video/requests/nope/cancel", headers=FAL)
        assert unknown.status_code == 404 and unknown.json() == {"status": "NOT_FOUND"}


def test_fal_errors_and_namespaced_apps() -> None:
    with TestClient(create_app(Knobs(latency_s=0))) as client:
        anonymous = client.post(f"/fal/{FAL_ENDPOINT}", json={})
        assert anonymous.status_code == 401 and anonymous.json()["detail"]
        request = client.post(f"/fal/{FAL_ENDPOINT}", json={}, headers=FAL).json()
        rid = request["request_id"]
        assert client.get(f"/fal/fal-ai/kling-video/requests/{rid}", headers=FAL).is_success
        wrong_app = client.get(f"/fal/fal-ai/veo3/requests/{rid}/status", headers=FAL)
        assert wrong_app.status_code == 404
        unknown = client.get("/fal/fal-ai/kling-video/requests/nope/status", headers=FAL)
        assert unknown.status_code == 404
        assert client.post("/fal/lonely", json={}, headers=FAL).status_code == 404
        flow = client.post("/fal/workflows/me/my-flow/step", json={}, headers=FAL).json()
        assert "/fal/workflows/me/my-flow/requests/" in flow["status_url"]
        assert client.get(flow["status_url"], headers=FAL).json()["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("fail_code", "http_status"), [("generation_failed", 500), ("content_policy_violation", 422)]
)
def test_fal_failure_is_completed_with_an_error(fail_code: str, http_status: int) -> None:
    with TestClient(create_app(Knobs(latency_s=0, fail_rate=1, fail_code=fail_code))) as client:
        request = client.post(f"/fal/{FAL_ENDPOINT}", json={}, headers=FAL).json()
        status = client.get(request["status_url"], headers=FAL).json()
        assert status["status"] == "COMPLETED" and status["error_type"] == fail_code
        assert status["error"]
        result = client.get(request["response_url"], headers=FAL)
        assert result.status_code == http_status
        assert result.headers["x-fal-error-type"] == fail_code


def test_fal_webhook_body_is_ok_with_the_result_or_error() -> None:
    app = create_app(Knobs(latency_s=0))
    client = TestClient(app)  # no lifespan: nothing is actually delivered
    url = f"/fal/{FAL_ENDPOINT}?fal_webhook=https://hooks.example/fal"
    request = client.post(url, json={}, headers=FAL).json()
    em = app.state.emulator
    job = em.jobs[request["request_id"]]
    assert job.callback_url == "https://hooks.example/fal"
    callback_body = fal.routes(em).callback_body
    assert callback_body is not None
    sent = callback_body(job, "http://127.0.0.1:9100")
    assert sent["status"] == "OK" and sent["request_id"] == job.id
    assert sent["payload"]["video"]["url"] == f"http://127.0.0.1:9100/_emulator/files/{job.id}.mp4"
    job.fails = True
    failed = callback_body(job, "http://127.0.0.1:9100")
    assert failed["status"] == "ERROR" and failed["error"] == "Invalid status code: 500"
    assert failed["payload"] == {"detail": "The model failed to generate the video."}


def test_fal_webhook_is_signed_with_the_key_its_jwks_serves() -> None:
    """Checked as fal's docs tell a receiver to: Ed25519 over request id, user id,
    timestamp and the body's SHA-256 hex, under a key from the served JWKS."""
    em_app = create_app(Knobs(latency_s=0))
    request = TestClient(em_app).post(f"/fal/{FAL_ENDPOINT}", json={}, headers=FAL).json()
    em = em_app.state.emulator
    job = em.jobs[request["request_id"]]
    vendor = fal.routes(em)  # a key pair of its own, served by its own router
    app = FastAPI()
    app.include_router(vendor.router, prefix="/fal")
    key_set = TestClient(app).get("/fal/.well-known/jwks.json").json()
    assert vendor.callback_body is not None and vendor.callback_headers is not None
    raw = json.dumps(vendor.callback_body(job, "http://127.0.0.1:9100")).encode()
    headers = vendor.callback_headers(job, raw)
    assert headers["X-Fal-Webhook-Request-Id"] == job.id
    assert headers["X-Fal-Webhook-User-Id"] == fal.USER_ID
    [jwk] = key_set["keys"]
    assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519") and "=" not in jwk["x"]
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "="))
    message = "\n".join(
        [job.id, fal.USER_ID, headers["X-Fal-Webhook-Timestamp"], hashlib.sha256(raw).hexdigest()]
    )
    public.verify(bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message.encode())
    with pytest.raises(InvalidSignature):
        public.verify(bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message.encode() + b" ")
    other = FastAPI()  # each emulator makes a key pair of its own
    other.include_router(fal.routes(em).router, prefix="/fal")
    [other_jwk] = TestClient(other).get("/fal/.well-known/jwks.json").json()["keys"]
    assert other_jwk["x"] != jwk["x"]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", "/luma/generations", AGENTS_BODY, LUMA),
        ("POST", RP_CREATE, {"input": {}}, RP),
        ("POST", f"/fal/{FAL_ENDPOINT}", {}, FAL),
    ],
)
def test_rate_limit_chaos_answers_429_with_retry_after(
    method: str, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    with TestClient(create_app(Knobs(rate_limit_rate=1, retry_after_s=30))) as client:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 429 and response.headers["retry-after"] == "30"
        assert response.json()["detail"]
        assert client.get("/_emulator/jobs").json() == []


# --- our adapters against the emulator ------------------------------------------------------


def shot(model: str, **fields: Any) -> GenerationRequest:
    values: dict[str, Any] = {
        "request_id": "att_1",
        "model": model,
        "prompt": "A harbour at dawn, boats rocking",
        "duration_s": 5,
        "fps": 16,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    return GenerationRequest(**(values | fields))


def asgi_client(app: FastAPI, vendor: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://emu/{vendor}"
    )


async def drive(
    adapter: Adapter, request: GenerationRequest, clock: Clock
) -> tuple[str, list[JobStatus]]:
    """Submit, then poll queued → running → done on the emulator's clock."""
    job_id = (await adapter.submit(request)).backend_job_id
    seen = [await adapter.poll(job_id)]
    for step in (15, 10):
        clock.now += step
        seen.append(await adapter.poll(job_id))
    return job_id, seen


async def fetch(adapter: Adapter, job_id: str, status: JobStatus) -> bytes:
    return b"".join([chunk async for chunk in adapter.download(job_id, status)])


@pytest.mark.parametrize(
    ("api", "model", "running"),
    [
        ("agents", "ray-3.2", "processing"),
        ("dream-machine", "ray-2", "dreaming"),
        ("auto", "ray-3.2", "processing"),
        ("auto", "ray-2", "dreaming"),
    ],
)
async def test_our_luma_adapter_against_the_emulator(
    api: ApiChoice, model: str, running: str
) -> None:
    app, clock = stepped(SLOW)
    adapter = LumaAdapter("luma-key", client=asgi_client(app, "luma"), api=api)
    try:
        job_id, seen = await drive(adapter, shot(model), clock)
        data = await fetch(adapter, job_id, seen[-1])
    finally:
        await adapter.aclose()
    assert [s.raw_state for s in seen] == ["queued", running, "completed"]
    assert [s.state for s in seen] == ["queued", "running", "succeeded"]
    assert data == sample_mp4()
    [job] = app.state.emulator.jobs.values()
    assert job.model == model and job.extra["api"] == wire_for(model)


async def test_our_luma_adapter_reads_a_failure_code() -> None:
    app = create_app(Knobs(latency_s=0, fail_rate=1, fail_code="content_moderated"))
    adapter = LumaAdapter("luma-key", client=asgi_client(app, "luma"))
    try:
        status = await adapter.poll((await adapter.submit(shot("ray-3.2"))).backend_job_id)
    finally:
        await adapter.aclose()
    assert status.state == "failed" and status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == ("content_moderated", "fatal")


async def test_our_replicate_adapter_against_the_emulator() -> None:
    app, clock = stepped(SLOW)
    adapter = ReplicateAdapter("r8_key", client=asgi_client(app, "replicate"))
    request = shot("wan-video/wan-2.2-t2v-fast")
    try:
        job_id, seen = await drive(adapter, request, clock)
        data = await fetch(adapter, job_id, seen[-1])
        [job] = app.state.emulator.jobs.values()
        # A pinned version, canceled while it waits for a worker.
        pinned = await adapter.submit(shot("wan-video/wan-2.2-t2v-fast:c483b1f7"))
        await adapter.cancel(pinned.backend_job_id)
        canceled = await adapter.poll(pinned.backend_job_id)
    finally:
        await adapter.aclose()
    assert [s.raw_state for s in seen] == ["starting", "processing", "succeeded"]
    assert [s.state for s in seen] == ["queued", "running", "succeeded"]
    assert (seen[1].progress, seen[1].step, seen[1].total_steps) == (0.5, 10, 20)
    assert data == sample_mp4()
    assert job.model == "wan-video/wan-2.2-t2v-fast" and job.payload["input"]["num_frames"] == 81
    assert canceled.state == "canceled"
    assert app.state.emulator.jobs[pinned.backend_job_id].extra["version"] == "c483b1f7"


async def test_our_replicate_adapter_reads_a_failed_prediction() -> None:
    app = create_app(Knobs(latency_s=0, fail_rate=1))
    adapter = ReplicateAdapter("r8_key", client=asgi_client(app, "replicate"))
    try:
        status = await adapter.poll((await adapter.submit(shot("a/b"))).backend_job_id)
    finally:
        await adapter.aclose()
    assert status.state == "failed" and status.failure is not None
    assert status.failure.code == "prediction_failed"


async def test_our_fal_adapter_against_the_emulator() -> None:
    app, clock = stepped(SLOW)
    endpoint = "fal-ai/wan/v2.2-a14b/text-to-video"
    adapter = FalAdapter(
        "fal-key", client=asgi_client(app, "fal"), unit_prices_usd={endpoint: "0.08"}
    )
    try:
        job_id, seen = await drive(adapter, shot("fal-ai/wan/v2.2-a14b"), clock)
        data = await fetch(adapter, job_id, seen[-1])
        [job] = app.state.emulator.jobs.values()
        queued = await adapter.submit(shot("fal-ai/wan/v2.2-a14b"))
        await adapter.cancel(queued.backend_job_id)
        canceled = await adapter.poll(queued.backend_job_id)
    finally:
        await adapter.aclose()
    assert [s.raw_state for s in seen] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert [s.state for s in seen] == ["queued", "running", "succeeded"]
    assert seen[0].queue_position == 0
    assert seen[-1].cost_usd_micros == 404_800  # 81 frames at 16 fps = 5.06 units x $0.08
    assert data == sample_mp4()
    assert job.model == endpoint and job.payload["num_frames"] == 81
    assert canceled.state == "failed"  # fal has no canceled state: COMPLETED with an error


@pytest.mark.parametrize(
    ("fail_code", "failure_class"),
    [("generation_failed", "fallback"), ("content_policy_violation", "fatal")],
)
async def test_our_fal_adapter_reads_a_failed_request(fail_code: str, failure_class: str) -> None:
    app = create_app(Knobs(latency_s=0, fail_rate=1, fail_code=fail_code))
    adapter = FalAdapter("fal-key", client=asgi_client(app, "fal"), pricing_url=None)
    try:
        status = await adapter.poll((await adapter.submit(shot("fal-ai/veo3"))).backend_job_id)
    finally:
        await adapter.aclose()
    assert status.state == "failed" and status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == (fail_code, failure_class)
